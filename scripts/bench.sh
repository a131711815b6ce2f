#!/usr/bin/env bash
# Throughput and failover measurements (not part of the test suite):
#
#   1. redis-benchmark -t set,get -n 100000 -c 50, without and with -P 16, against the leader of
#      a local 3-node kvd cluster (release build, heartbeat-ms 50, election-timeout-ms 500);
#   2. the same, back to back, against one redis-server with appendonly yes, appendfsync always;
#   3. failover time over 10 trials: kill -9 the leader, time until the first successful
#      `kvctl put` (kvctl retries across the endpoints), restart the killed node, wait until it
#      caught up.
#
# Then a summary table: requests/s (median over BENCH_RUNS runs), kvd/redis ratios, failover
# median and worst in ms. Every process it starts is stopped on exit; the data lives in a
# temporary directory (under $TMPDIR) that is removed afterwards (kept if BENCH_KEEP is set).
#
#   scripts/bench.sh                  build (release) and measure
#   BENCH_RUNS=3 scripts/bench.sh     median of 3 runs of each redis-benchmark
#   BENCH_REQUESTS=20000 BENCH_TRIALS=5 scripts/bench.sh   a quicker look
#   KVD_SKIP_BUILD=1                  use the release binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."

unset KVCTL_ENDPOINTS
runs=${BENCH_RUNS:-1}
requests=${BENCH_REQUESTS:-100000}
clients=${BENCH_CLIENTS:-50}
trials=${BENCH_TRIALS:-10}

for tool in redis-benchmark redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool not found (apt-get install redis-tools redis-server)" >&2; exit 1; }
done

source scripts/lib/local-cluster.sh
release_binaries bench.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-bench-XXXXXX")
declare -A node_pid=()
redis_pid=""

cleanup() {
    # shellcheck disable=SC2086 # redis_pid is empty or one pid
    kill_and_reap "${node_pid[@]}" $redis_pid
    if [ -n "${BENCH_KEEP:-}${KEEP_WORK:-}" ]; then echo "bench.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conf="$work/cluster.conf"
write_cluster_conf bench
redis_port=${ports[6]}

# requests/s of SET and GET, as "set get", from redis-benchmark's CSV output.
benchmark() { # PORT EXTRA-ARGS...
    local port=$1
    shift
    timeout 600 redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$requests" -c "$clients" "$@" --csv 2>/dev/null |
        awk -F'"' '$2 == "SET" { set = $4 } $2 == "GET" { get = $4 } END { printf "%s %s\n", set, get }'
}


declare -A results=()
record() { # NAME "set get"
    local set get
    read -r set get <<<"$2"
    results[$1-set]+="$set "
    results[$1-get]+="$get "
    printf '  %-18s SET %10s req/s   GET %10s req/s\n' "$1" "$set" "$get"
}

echo "bench.sh: 3-node kvd cluster in $work (client ports $(client_port 1), $(client_port 2), $(client_port 3))"
for id in 1 2 3; do start_node "$id"; done
leader=$(wait_for_leader)
echo "bench.sh: leader is node $leader"

start_redis bench.sh "$redis_port"

echo "bench.sh: redis-benchmark -t set,get -n $requests -c $clients [-P 16], $runs run(s) each"
for run in $(seq 1 "$runs"); do
    leader=$(wait_for_leader)
    record kvd "$(benchmark "$(client_port "$leader")")"
    record kvd-P16 "$(benchmark "$(client_port "$leader")" -P 16)"
    record redis "$(benchmark "$redis_port")"
    record redis-P16 "$(benchmark "$redis_port" -P 16)"
done
kill -TERM "$redis_pid" 2>/dev/null || true  # redis exits cleanly on SIGTERM (no job-control noise)
wait "$redis_pid" 2>/dev/null || true
redis_pid=""

echo "bench.sh: failover, $trials trials (kill -9 the leader -> first successful kvctl put)"
failovers=()
for trial in $(seq 1 "$trials"); do
    leader=$(wait_for_leader)
    pid=${node_pid[$leader]}
    start=$(now_ms)
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    unset "node_pid[$leader]"
    "$kvctl" --config "$conf" put --timeout 30 "failover-$trial" "$trial" >/dev/null
    elapsed=$(($(now_ms) - start))
    failovers+=("$elapsed")
    # Restart the killed node and wait until it applied what the new leader has.
    new_leader=$(wait_for_leader)
    target=$(info_field "$new_leader" applied_index)
    start_node "$leader"
    deadline=$(($(now_ms) + 30000))
    until applied=$(info_field "$leader" applied_index) && [ -n "$applied" ] && [ "$applied" -ge "$target" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "bench.sh: node $leader did not catch up (logs in $work)" >&2; BENCH_KEEP=1; exit 1; }
        sleep 0.05
    done
    caught_up=$(($(now_ms) - start))
    printf '  trial %2d: node %s killed, new leader %s, first write after %5d ms; restarted node caught up %d ms after the kill\n' \
        "$trial" "$leader" "$new_leader" "$elapsed" "$caught_up"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
m() { tr ' ' '\n' <<<"${results[$1]}" | grep -v '^$' | median; }
fo_median=$(printf '%s\n' "${failovers[@]}" | median | awk '{ printf "%.0f", $1 }')
fo_worst=$(printf '%s\n' "${failovers[@]}" | sort -n | tail -n 1)

echo
echo "Summary (requests/s, median of $runs run(s); redis-benchmark -t set,get -n $requests -c $clients)"
printf '%-10s %14s %14s %10s\n' "" "kvd (3 nodes)" "redis (fsync)" "kvd/redis"
for test in set get; do
    for mode in "" -P16; do
        name=$(tr a-z A-Z <<<"$test")${mode:+ -P 16}
        k=$(m "kvd$mode-$test")
        r=$(m "redis$mode-$test")
        printf '%-10s %14.0f %14.0f %10s\n' "$name" "$k" "$r" "$(ratio "$k" "$r")"
    done
done
echo
echo "Failover (kill -9 leader -> first successful kvctl put), $trials trials: median ${fo_median} ms, worst ${fo_worst} ms"
echo "  all: ${failovers[*]}"
