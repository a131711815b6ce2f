#!/usr/bin/env bash
# What keys with a time to live cost (not part of the test suite), on a local 3-node cluster of
# release binaries:
#
#   1. SET throughput (redis-benchmark, 50 clients) of plain keys, then of keys with `EX 3600`,
#      then plain again once TTL_KEYS keys carry a deadline: a key's deadline must not make other
#      writes slower, and the leader's per-tick expiry lookup must not grow with the keys that
#      carry one (loop_iteration_p99_us from INFO before and after);
#   2. mass expiry: TTL_KEYS keys written with one shared deadline (`PXAT`), then the time from
#      that deadline until DBSIZE is 0 on every node, read by each node from its own state.
#
#   scripts/ttl-bench.sh              build (release) and measure, 200,000 keys
#   TTL_KEYS=50000 scripts/ttl-bench.sh
#   KVD_SKIP_BUILD=1                  use the release binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."

keys=${TTL_KEYS:-200000}
requests=${TTL_REQUESTS:-100000}

for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "ttl-bench.sh: $tool not found (apt-get install redis-tools)" >&2; exit 1; }
done

source scripts/lib/local-cluster.sh
release_binaries ttl-bench.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-ttl-bench-XXXXXX")
declare -A node_pid=()
cleanup() {
    kill_and_reap "${node_pid[@]}"
    if [ -n "${KEEP_WORK:-}" ]; then echo "ttl-bench.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conf="$work/cluster.conf"
write_cluster_conf ttl-bench
for id in 1 2 3; do start_node "$id"; done
leader=$(wait_for_leader)
port=$(client_port "$leader")

# requests/s of one redis-benchmark command line against the leader.
rate() { # ARGS...
    timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -c 50 --csv "$@" 2>/dev/null | tail -1 | awk -F'"' '{ print $4 }'
}
info() { # FIELD
    redis-cli -h 127.0.0.1 -p "$port" INFO kvd | tr -d '\r' | sed -n "s/^$1://p"
}
dbsize() { # NODE: the node's own count (READONLY reads its applied state)
    printf 'READONLY\r\nDBSIZE\r\n' | timeout 5 redis-cli -h 127.0.0.1 -p "$(client_port "$1")" 2>/dev/null | tail -1
}

echo "ttl-bench.sh: 3-node cluster, leader node $leader; $keys keys with a deadline"
plain_before=$(rate -n "$requests" -r 1000000 -t set)
p99_before=$(info loop_iteration_p99_us)
with_ttl=$(rate -n "$keys" -r 100000000 SET 'ttl:__rand_int__' v EX 3600)
plain_after=$(rate -n "$requests" -r 1000000 -t set)
p99_after=$(info loop_iteration_p99_us)
echo "SET plain: $plain_before/s; SET EX 3600: $with_ttl/s; SET plain with $(redis-cli -p "$port" DBSIZE) keys, most with a deadline: $plain_after/s"
echo "leader loop iteration p99 (whole run so far): $p99_before us before, $p99_after us after"

redis-cli -h 127.0.0.1 -p "$port" FLUSHALL >/dev/null
# Every key gets the same deadline (PXAT), far enough ahead for all of them to be written first.
start=$(now_ms)
deadline=$((start + 20000 + keys / 5))
rate -n "$keys" -r 100000000 SET 'short:__rand_int__' v PXAT "$deadline" >/dev/null
written=$(now_ms)
total=$(redis-cli -h 127.0.0.1 -p "$port" DBSIZE)
[ "$written" -lt "$deadline" ] || { echo "ttl-bench.sh: writing took past the deadline; lower TTL_KEYS" >&2; exit 1; }
echo "wrote $total keys in $((written - start)) ms, all expiring at one deadline"
while [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.01; done
for id in 1 2 3; do
    until [ "$(dbsize "$id")" = 0 ]; do
        [ $(($(now_ms) - deadline)) -lt 120000 ] || { echo "ttl-bench.sh: node $id still has keys after 120 s" >&2; exit 1; }
        sleep 0.02
    done
    echo "node $id: all $total keys gone $(($(now_ms) - deadline)) ms after their deadline"
done
