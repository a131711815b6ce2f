#!/usr/bin/env bash
# The cost of TLS on the client port (docs/SECURITY.md, "TLS"): one kvd node with a plain and a
# TLS address, redis-benchmark SET and GET against each in alternation, ROUNDS rounds; prints
# requests per second and the node's CPU time per request (utime + stime from /proc), then the
# medians and the TLS/plain ratios. Needs redis-benchmark (Debian's redis-tools, built with TLS).
#
#   scripts/tls-cost.sh                 # 3 rounds of 100,000 requests, 50 clients
#   ROUNDS=5 REQUESTS=200000 KVD_SKIP_BUILD=1 scripts/tls-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
requests=${REQUESTS:-100000}
clients=${CLIENTS:-50}
command -v redis-benchmark >/dev/null || { echo "tls-cost: needs redis-benchmark (apt-get install redis-tools)" >&2; exit 1; }
if [ "${KVD_SKIP_BUILD:-0}" != 1 ]; then swift build -c release --product kvd >/dev/null; fi
fixtures=$PWD/Tests/Fixtures/tls
work=$(mktemp -d /tmp/kvd-tls-cost-XXXXXX)
port=$((20000 + RANDOM % 20000))
cat >"$work/node.conf" <<CONF
cluster-id tlscost
tls-cert-file $fixtures/server.pem
tls-key-file $fixtures/server.key
node 1 peer=127.0.0.1:$((port + 1)) client=127.0.0.1:$port client-tls=127.0.0.1:$((port + 2))
CONF
.build/release/kvd --config "$work/node.conf" --id 1 --data-dir "$work/data" --log-level warning 2>"$work/kvd.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
# Ready once a write is acknowledged (the node has elected itself).
for _ in $(seq 100); do [ "$(redis-cli -p "$port" SET ready 1 2>/dev/null)" = OK ] && break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null || { echo "tls-cost: kvd did not start:" >&2; cat "$work/kvd.log" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
run() { # label, test, extra args...
    local label=$1 test=$2; shift 2
    local before after rps
    before=$(cpu)
    rps=$(redis-benchmark "$@" -t "$test" -n "$requests" -c "$clients" -q 2>/dev/null | tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
    after=$(cpu)
    local us_per_op
    us_per_op=$(awk -v t="$((after - before))" -v hz="$ticks" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "$label $test $rps $us_per_op"
}
results=$work/results
for round in $(seq "$rounds"); do
    for test in set get; do
        run plain "$test" -p "$port" | tee -a "$results"
        run tls "$test" --tls --cacert "$fixtures/ca.pem" -p "$((port + 2))" | tee -a "$results"
    done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def median(kind, test, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == kind and r[1] == test)
print(f"{'test':5} {'plain req/s':>12} {'tls req/s':>10} {'ratio':>6} {'plain cpu us/op':>16} {'tls cpu us/op':>14} {'ratio':>6}")
for test in ("set", "get"):
    p, t = median("plain", test, 2), median("tls", test, 2)
    pc, tc = median("plain", test, 3), median("tls", test, 3)
    print(f"{test:5} {p:12.0f} {t:10.0f} {t / p:6.2f} {pc:16.1f} {tc:14.1f} {tc / pc:6.2f}")
PY
