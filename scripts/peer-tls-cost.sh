#!/usr/bin/env bash
# The cost of TLS between peers (docs/SECURITY.md, "TLS between peers"): a 3-node cluster of
# release binaries, started with plain peer connections and with mutual peer TLS in alternation,
# ROUNDS rounds; each round runs redis-benchmark SET against the leader and prints requests per
# second and the CPU time of all three nodes per request (utime + stime from /proc), then the
# medians and the TLS/plain ratios. Needs redis-benchmark (Debian's redis-tools).
#
#   scripts/peer-tls-cost.sh            # 3 rounds of 100,000 SETs, 50 clients, 128-byte values
#   ROUNDS=5 REQUESTS=200000 VALUE_BYTES=4096 KVD_SKIP_BUILD=1 scripts/peer-tls-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
requests=${REQUESTS:-100000}
clients=${CLIENTS:-50}
value_bytes=${VALUE_BYTES:-128}
command -v redis-benchmark >/dev/null || { echo "peer-tls-cost: needs redis-benchmark (apt-get install redis-tools)" >&2; exit 1; }
if [ "${KVD_SKIP_BUILD:-0}" != 1 ]; then swift build -c release --product kvd >/dev/null; fi
fixtures=$PWD/Tests/Fixtures/tls
work=$(mktemp -d /tmp/kvd-peer-tls-cost-XXXXXX)
base=$((20000 + RANDOM % 20000))
pids=()
stop_cluster() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop_cluster; rm -rf "$work"' EXIT

# Starts the cluster of kind `plain` or `tls` in a fresh directory; writes the leader's client
# port to $work/leader (not printed: a command substitution would start the nodes in a subshell).
start_cluster() {
    local kind=$1 dir=$work/$1-$2
    mkdir -p "$dir"
    {
        echo "cluster-id peertlscost"
        if [ "$kind" = tls ]; then
            echo "peer-tls-cert-file $fixtures/peer.pem"
            echo "peer-tls-key-file $fixtures/peer.key"
            echo "peer-tls-ca-file $fixtures/ca.pem"
        fi
        for id in 1 2 3; do echo "node $id peer=127.0.0.1:$((base + 10 + id)) client=127.0.0.1:$((base + id))"; done
    } >"$dir/cluster.conf"
    for id in 1 2 3; do
        .build/release/kvd --config "$dir/cluster.conf" --id "$id" --data-dir "$dir/data/$id" --log-level warning \
            2>"$dir/node$id.log" &
        pids+=($!)
    done
    for _ in $(seq 200); do
        for id in 1 2 3; do
            if redis-cli -p "$((base + id))" INFO 2>/dev/null | grep -q '^role:leader'; then
                # Ready once a write is acknowledged through the leader.
                [ "$(redis-cli -p "$((base + id))" SET ready 1 2>/dev/null)" = OK ] && { echo "$((base + id))" >"$work/leader"; return; }
            fi
        done
        sleep 0.1
    done
    echo "peer-tls-cost: no leader for the $kind cluster:" >&2
    cat "$dir"/node*.log >&2
    exit 1
}

ticks=$(getconf CLK_TCK)
cpu() { local total=0; for pid in "${pids[@]}"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done; echo "$total"; }
results=$work/results
for round in $(seq "$rounds"); do
    for kind in plain tls; do
        start_cluster "$kind" "$round"
        port=$(cat "$work/leader")
        before=$(cpu)
        rps=$(redis-benchmark -p "$port" -t set -d "$value_bytes" -n "$requests" -c "$clients" -q 2>/dev/null | tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
        after=$(cpu)
        us_per_op=$(awk -v t="$((after - before))" -v hz="$ticks" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
        echo "$kind set $rps $us_per_op" | tee -a "$results"
        stop_cluster
    done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def median(kind, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == kind)
p, t = median("plain", 2), median("tls", 2)
pc, tc = median("plain", 3), median("tls", 3)
print(f"{'test':5} {'plain req/s':>12} {'peer TLS req/s':>15} {'ratio':>6} {'plain cpu us/op':>16} {'peer TLS cpu us/op':>19} {'ratio':>6}")
print(f"{'set':5} {p:12.0f} {t:15.0f} {t / p:6.2f} {pc:16.1f} {tc:19.1f} {tc / pc:6.2f}")
PY
