#!/usr/bin/env bash
# Leader stability under full write load with no fault (not part of the test suite): a local
# 3-node kvd cluster (release build, heartbeat-ms 50, election-timeout-ms 500, the default
# peer-stall-timeout-ms) takes STEADY_MINUTES of `redis-benchmark -t set -r STEADY_KEYS -d 100
# -c STEADY_CLIENTS` against its leader. Every second it samples each node's INFO (term, leader).
# It prints the write rate and counts what must stay at zero for failover that is fast without
# being trigger-happy:
#   - leader changes (the agreed (term, leader) pair changing) and terms started;
#   - peer connections closed as stalled ("no probe answered" in the logs);
#   - early pre-votes after a leader was reported unreachable ("leader unreachable");
# and, for context, how many Raft loop iterations took over 50 ms. Exit status 1 if the leader
# changed. All processes stop on exit; data and logs live in a temporary directory, removed
# afterwards unless STEADY_KEEP=1.
#
#   scripts/steady-load.sh                           10 minutes, 64 clients, 100,000 keys
#   STEADY_MINUTES=1 scripts/steady-load.sh          a quick look
#   KVD_SKIP_BUILD=1 KVD_BIN_DIR=/path/to/bin        use binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${STEADY_MINUTES:-10}
clients=${STEADY_CLIENTS:-64}
keys=${STEADY_KEYS:-100000}
bin_dir=${KVD_BIN_DIR:-.build/release}
for value in "$minutes" "$clients" "$keys"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "steady-load.sh: STEADY_MINUTES, STEADY_CLIENTS and STEADY_KEYS must be positive numbers" >&2; exit 2; }
done
for tool in redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "steady-load.sh: $tool not found (apt-get install redis-tools python3)" >&2; exit 1; }
done
if [ -z "${KVD_SKIP_BUILD:-}" ]; then
    echo "steady-load.sh: building kvd (release)"
    swift build -c release --product kvd >/dev/null
fi
kvd=$bin_dir/kvd
[ -x "$kvd" ] || { echo "steady-load.sh: no kvd binary at $kvd" >&2; exit 1; }

work=$(mktemp -d /tmp/kvd-steady.XXXXXX)
conf=$work/cluster.conf
declare -A node_pid=()
bench_pid=""
KEEP_WORK=${STEADY_KEEP:-}
cleanup() {
    [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null || true
    for pid in "${node_pid[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$KEEP_WORK" ]; then echo "steady-load.sh: data and logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/lib/local-cluster.sh
source scripts/lib/local-cluster.sh
write_cluster_conf steady
mkdir -p "$work/data"
for id in 1 2 3; do start_node "$id"; done
leader=$(wait_for_leader)
start_term=$(info_field "$leader" term)
start_applied=$(info_field "$leader" applied_index)
echo "steady-load.sh: leader $leader in term $start_term; ${minutes} min of SET with $clients clients over $keys keys"

# redis-benchmark gives up on errors (a follower's -NOTLEADER after a leader change): it is
# restarted against the current leader, so the load stays full for the whole run.
bench_restarts=0
start_load() {
    redis-benchmark -h 127.0.0.1 -p "$(client_port "$1")" -t set -r "$keys" -d 100 -c "$clients" -l -q \
        >/dev/null 2>&1 &
    bench_pid=$!
}
start_load "$leader"

samples=$work/samples
started=$(now_ms)
deadline=$((started + minutes * 60000))
changes=0
last_pair="$start_term/$leader"
while [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 1
    if ! kill -0 "$bench_pid" 2>/dev/null; then
        current=$(leader_id) || current=$leader
        start_load "$current"
        bench_restarts=$((bench_restarts + 1))
    fi
    for id in 1 2 3; do
        seen=$(redis-cli -h 127.0.0.1 -p "$(client_port "$id")" INFO 2>/dev/null | tr -d '\r') || continue
        pair="$(sed -n 's/^term://p' <<<"$seen")/$(sed -n 's/^leader_id://p' <<<"$seen")"
        echo "$(($(now_ms) - started)) $id $pair" >>"$samples"
        if [ "$id" = "$leader" ] && [ "$pair" != "$last_pair" ]; then
            changes=$((changes + 1))
            echo "  $(($(now_ms) - started)) ms: node $id reports term/leader $pair (was $last_pair)"
            last_pair=$pair
        fi
    done
done
elapsed=$(($(now_ms) - started))
end_applied=$(info_field "$leader" applied_index)
end_term=$(info_field "$leader" term)
kill "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
bench_pid=""

count() { cat "$work"/node*.log | grep -c "$1" || true; }
rate=$(( (end_applied - start_applied) * 1000 / elapsed ))
echo
echo "Summary: ${minutes} min of full write load, no fault; 3 nodes, heartbeat 50 ms, election timeout 500 ms"
echo "  writes applied:           $((end_applied - start_applied)) ($rate per s)"
echo "  leader changes:           $changes (terms $start_term -> $end_term; load restarted $bench_restarts times)"
echo "  stalled peer connections: $(count 'no probe answered')"
echo "  leader reported unreachable (early pre-votes): $(count 'leader unreachable')"
echo "  loop iterations > 50 ms:  $(count 'slow raft loop iteration')"
echo "reproduce: STEADY_MINUTES=$minutes STEADY_CLIENTS=$clients STEADY_KEYS=$keys KVD_SKIP_BUILD=${KVD_SKIP_BUILD:-} KVD_BIN_DIR=$bin_dir scripts/steady-load.sh"
echo "  (loopback, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$changes" -eq 0 ] && [ "$start_term" = "$end_term" ]
