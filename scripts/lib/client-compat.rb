# ruby-redis (Debian's ruby-redis) checks of Redis behaviour against one kvd node, for
# scripts/client-compat.sh.
#
#   ruby client-compat.rb PORT ROLE
#
# Each check prints "PASS <client> <role>: <what>" or "FAIL <client> <role>: <what>: <why>";
# the exit status is 1 if any failed. The client's connect, read and write timeouts bound every
# call. Keys are under a prefix unique to this run.
require "redis"
require "securerandom"

port = Integer(ARGV.fetch(0))
role = ARGV.fetch(1)
label = "ruby-redis #{Redis::VERSION} #{role}"
redis = Redis.new(host: "127.0.0.1", port: port, timeout: 5, connect_timeout: 5, reconnect_attempts: 0)
prefix = "compat:#{role}:ruby:#{SecureRandom.hex(4)}:"
$failures = 0

def expect(actual, expected, what)
  raise "#{what}got #{actual.inspect}, expected #{expected.inspect}" unless actual == expected
end

def check(label, what)
  yield
  puts "PASS #{label}: #{what}"
rescue StandardError => e
  $failures += 1
  puts "FAIL #{label}: #{what}: #{e.class}: #{e.message}"
ensure
  $stdout.flush
end

check(label, "SET/GET") do
  expect(redis.set("#{prefix}a", "1"), "OK", "SET: ")
  expect(redis.get("#{prefix}a"), "1", "GET: ")
  expect(redis.get("#{prefix}missing"), nil, "GET of a missing key: ")
end

check(label, "EXPIRE/TTL") do
  redis.set("#{prefix}ttl", "v")
  expect(redis.ttl("#{prefix}ttl"), -1, "TTL without expiry: ")
  expect(redis.expire("#{prefix}ttl", 100), true, "EXPIRE: ")
  ttl = redis.ttl("#{prefix}ttl")
  raise "TTL after EXPIRE 100 is #{ttl.inspect}" unless ttl.is_a?(Integer) && ttl.between?(90, 100)
end

check(label, "MULTI/EXEC") do
  replies = redis.multi do |tx|
    tx.set("#{prefix}m", "1")
    tx.incr("#{prefix}m")
  end
  expect(replies, ["OK", 2], "MULTI/EXEC replies: ")
end

check(label, "SCAN MATCH") do
  keys = (0...15).map { |i| "#{prefix}scan:#{i}" }
  keys.each { |k| redis.set(k, "s") }
  found = redis.scan_each(match: "#{prefix}scan:*", count: 5).to_a.uniq.sort
  expect(found, keys.sort, "SCAN keys: ")
end

exit($failures.zero? ? 0 : 1)
