#!/usr/bin/env bash
# kvd vs etcd vs redis-server, side by side, in one command (not part of the test suite):
#
#   kvd     a local 3-node cluster (release build, heartbeat-ms 50, election-timeout-ms 500),
#           load from `kvctl bench` against the leader
#   etcd    a 3-member etcd 3.4 cluster on loopback ports, default settings (fsync on), load
#           from scripts/lib/etcd-load.py (grpcio, raw unary calls) against the leader
#   redis   one redis-server with appendonly yes, appendfsync always, load from `kvctl bench`
#
# Shapes (REPORT_KEYS keys drawn uniformly, REPORT_VALUE-byte values; every target is preloaded
# with every key first):
#
#   put-64    put, 64 clients, closed loop
#   put-1     put, 1 client
#   get-64    linearizable get, 64 clients
#   put-P16   pipelined put: redis-benchmark -r KEYS -d VALUE -t set -c 50 -P 16 (kvd and redis)
#
# For each shape and target: throughput, p50 and p99 latency, the CPU time (µs/op) and context
# switches per operation of the server processes over the measured window (from /proc), and the
# load generator's CPU. Everything runs REPORT_RUNS times, one shape at a time with the targets
# interleaved (their order rotating from run to run); summary.md holds the medians with kvd/etcd
# and kvd/redis ratios, and run-N/ each run's raw JSON. See docs/bench/SPEED.md.
#
#   scripts/speed-report.sh [OUT-DIR]          default OUT-DIR: run/speed-report
#   REPORT_SECONDS=5 REPORT_WARMUP=1           seconds measured (and warmed up) per measurement
#   REPORT_RUNS=3                              repetitions (medians are reported)
#   REPORT_KEYS=100000 REPORT_VALUE=100 REPORT_SEED=1
#   REPORT_ETCD_PROCESSES=2                    processes of the etcd load generator
#   KVD_SKIP_BUILD=1 KVD_BIN_DIR=DIR           use release binaries already built (kvd, kvctl)
#   KVD_SPEED_VENV=DIR                         venv with grpcio (default ~/.cache/kvd-speed-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

unset KVCTL_ENDPOINTS
out=${1:-run/speed-report}
seconds=${REPORT_SECONDS:-5}
warmup=${REPORT_WARMUP:-1}
runs=${REPORT_RUNS:-3}
keys=${REPORT_KEYS:-100000}
value=${REPORT_VALUE:-100}
seed=${REPORT_SEED:-1}
etcd_processes=${REPORT_ETCD_PROCESSES:-2}
venv=${KVD_SPEED_VENV:-$HOME/.cache/kvd-speed-venv}
# kvctl bench's keys are this prefix and the decimal index: key:0000000 + 12345 is
# key:000000012345, 16 bytes, the same key as redis-benchmark -r makes for index 12345.
key_prefix=key:0000000

for tool in redis-server redis-cli redis-benchmark python3; do
    command -v "$tool" >/dev/null || { echo "speed-report.sh: $tool not found (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
if ! command -v etcd >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "speed-report.sh: installing etcd (apt-get install -y etcd-server)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >/dev/null; }
    else
        echo "speed-report.sh: etcd not found: run 'sudo apt-get install -y etcd-server' (Debian's etcd 3.4) first" >&2
        exit 1
    fi
fi
if ! "$venv/bin/python" -c 'import grpc' 2>/dev/null; then
    echo "speed-report.sh: installing grpcio into $venv"
    python3 -m venv "$venv" || { echo "speed-report.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
    "$venv/bin/pip" install -q grpcio
fi
source scripts/lib/local-cluster.sh
release_binaries speed-report.sh
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out"/run-* "$out/summary.md" "$out/settings.json"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-speed-report-XXXXXX")
declare -A node_pid=()
etcd_pids=()
redis_pid=""
load_pid=""
# descendants PID: the process and everything below it, parents first.
descendants() {
    local child
    echo "$1"
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do descendants "$child"; done
}
cleanup() {
    local load=()
    [ -z "$load_pid" ] || mapfile -t load < <(descendants "$load_pid")
    # shellcheck disable=SC2086 # redis_pid is empty or one pid
    kill_and_reap "${load[@]}" "${node_pid[@]}" "${etcd_pids[@]}" $redis_pid
    if [ -n "${KEEP_WORK:-}" ]; then echo "speed-report.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conf="$work/cluster.conf"
write_cluster_conf speed-report
redis_port=${ports[6]}
read -r -a etcd_ports <<<"$(free_ports 6)" # client ports, then peer ports

# --- the three systems -----------------------------------------------------------------------

echo "speed-report.sh: 3-node kvd cluster, 3-member etcd cluster and redis-server in $work"
for id in 1 2 3; do start_node "$id"; done

etcd_client() { echo "127.0.0.1:${etcd_ports[$(($1 - 1))]}"; }
etcd_peer() { echo "http://127.0.0.1:${etcd_ports[$(($1 + 2))]}"; }
etcd_cluster="m1=$(etcd_peer 1),m2=$(etcd_peer 2),m3=$(etcd_peer 3)"
etcd_endpoints="$(etcd_client 1),$(etcd_client 2),$(etcd_client 3)"
for member in 1 2 3; do
    etcd --name "m$member" --data-dir "$work/etcd/m$member" --logger zap --log-outputs stderr \
        --listen-client-urls "http://$(etcd_client "$member")" --advertise-client-urls "http://$(etcd_client "$member")" \
        --listen-peer-urls "$(etcd_peer "$member")" --initial-advertise-peer-urls "$(etcd_peer "$member")" \
        --initial-cluster "$etcd_cluster" --initial-cluster-token speed-report --initial-cluster-state new \
        >>"$work/etcd-m$member.log" 2>&1 &
    etcd_pids+=("$!")
done

start_redis speed-report.sh "$redis_port"

etcd_load() { "$venv/bin/python" scripts/lib/etcd-load.py "$@"; }
etcd_leader() { # the leader's client address, once there is one
    local deadline=$(($(now_ms) + 20000)) leader
    until leader=$(etcd_load leader --endpoint "$etcd_endpoints" 2>/dev/null); do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "speed-report.sh: etcd has no leader after 20 s (logs in $work)" >&2; KEEP_WORK=1; exit 1; }
        sleep 0.2
    done
    echo "$leader"
}
kvd_leader() { echo "127.0.0.1:$(client_port "$(wait_for_leader)")"; }

echo "speed-report.sh: kvd leader $(kvd_leader), etcd leader $(etcd_leader), redis-server 127.0.0.1:$redis_port"

# --- preload: every key once, so that gets find a value and puts overwrite one ----------------

resp_preload() { # PORT: SET of every key through redis-cli --pipe
    local port=$1 result
    result=$(python3 - "$keys" "$key_prefix" "$value" <<'PY' | redis-cli -h 127.0.0.1 -p "$port" --pipe 2>&1
import sys
keys, prefix, size = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
value = b"v" * size
out = sys.stdout.buffer
for i in range(keys):
    key = prefix + str(i).encode()
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, value))
PY
    )
    grep -q "errors: 0, replies: $keys" <<<"$result" || { echo "speed-report.sh: preload of port $port failed: $result" >&2; exit 1; }
}
echo "speed-report.sh: preloading $keys keys of $value bytes into each"
leader=$(kvd_leader)
resp_preload "${leader##*:}"
resp_preload "$redis_port"
etcd_load preload --endpoint "$(etcd_leader)" --keys "$keys" --key-prefix "$key_prefix" --value-bytes "$value" --seed "$seed"

# --- measurements ----------------------------------------------------------------------------

pids_of() { # TARGET: its server processes, comma-separated
    case $1 in
    kvd) local IFS=,; echo "${node_pid[*]}" ;;
    etcd) local IFS=,; echo "${etcd_pids[*]}" ;;
    redis) echo "$redis_pid" ;;
    esac
}

# measure SHAPE TARGET FORMAT [--requests N] -- COMMAND...: one measurement into $run_dir.
measure() {
    local shape=$1 target=$2 format=$3 raw
    shift 3
    case $format in redis-benchmark) raw=$run_dir/$shape-$target.csv ;; *) raw=$run_dir/$shape-$target.json ;; esac
    python3 scripts/lib/speed-report.py measure --target "$target" --shape "$shape" --format "$format" \
        --servers "$(pids_of "$target")" --warmup "$warmup" --seconds "$seconds" \
        --raw "$raw" --out "$run_dir/$shape-$target.speed.json" "$@" &
    load_pid=$!
    wait "$load_pid" || echo "speed-report.sh: $shape on $target failed; it is left out of the medians" >&2
    load_pid=""
}

load_common=(--keys "$keys" --key-prefix "$key_prefix" --value-bytes "$value" --seed "$seed"
    --warmup "$warmup" --duration "$seconds")
kvctl_shape() { # SHAPE TARGET WORKLOAD CLIENTS
    local endpoint label
    if [ "$2" = kvd ]; then
        endpoint=$(kvd_leader) label="kvd, 3 nodes"
    else
        endpoint=127.0.0.1:$redis_port label="redis-server, appendfsync always"
    fi
    measure "$1" "$2" kvctl -- "$kvctl" bench "$3" --endpoints "$endpoint" --label "$label" --clients "$4" "${load_common[@]}" --json
}
etcd_shape() { # SHAPE WORKLOAD CLIENTS
    measure "$1" etcd etcd -- "$venv/bin/python" scripts/lib/etcd-load.py "$2" --endpoint "$(etcd_leader)" \
        --label "etcd, 3 members" --quiet --clients "$3" --processes "$etcd_processes" "${load_common[@]}"
}
warmup_ms=$(awk -v w="$warmup" 'BEGIN { printf "%d", w * 1000 }')
pipelined_shape() { # TARGET: redis-benchmark -P 16 after a warm-up that also sizes the run
    local target=$1 port rps requests until
    if [ "$target" = kvd ]; then port=$(kvd_leader) port=${port##*:}; else port=$redis_port; fi
    local args=(-h 127.0.0.1 -p "$port" -r "$keys" -d "$value" -t set -c 50 -P 16 --csv)
    # Warm up with runs of 20000 requests for REPORT_WARMUP seconds (at least one); the last
    # one's rate sets the measured run's -n to last about REPORT_SECONDS.
    until=$(($(now_ms) + warmup_ms))
    while :; do
        rps=$(timeout 120 redis-benchmark "${args[@]}" -n 20000 2>/dev/null | awk -F'"' '$2 == "SET" { print $4 }')
        [ "$(now_ms)" -lt "$until" ] || break
    done
    requests=$(awk -v r="${rps:-0}" -v s="$seconds" 'BEGIN { n = int(r * s); print (n < 20000 ? 20000 : n) }')
    measure put-P16 "$target" redis-benchmark --requests "$requests" -- redis-benchmark "${args[@]}" -n "$requests"
}

{
    echo "{"
    echo "\"seconds\": $seconds, \"warmup\": $warmup, \"runs\": $runs, \"keys\": $keys, \"value\": $value, \"seed\": $seed,"
    echo "\"cores\": $(nproc), \"load_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
    echo "\"kvd\": \"3 nodes, heartbeat-ms 50, election-timeout-ms 500, release build\","
    echo "\"etcd\": \"$(etcd --version | sed -n 's/^etcd Version: //p'), 3 members, default settings (fsync on)\","
    echo "\"grpcio\": \"$("$venv/bin/python" -c 'import grpc; print(grpc.__version__)')\", \"etcd_processes\": $etcd_processes,"
    echo "\"redis\": \"$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'), appendonly yes, appendfsync always\""
    echo "}"
} >"$out/settings.json"

targets=(kvd etcd redis)
for run in $(seq 1 "$runs"); do
    run_dir=$out/run-$run
    mkdir -p "$run_dir"
    shift_by=$(((run - 1) % 3))
    order=("${targets[@]:shift_by}" "${targets[@]:0:shift_by}")
    echo "speed-report.sh: run $run of $runs (targets in the order ${order[*]})"
    for shape in put-64 put-1 get-64 put-P16; do
        for target in "${order[@]}"; do
            case $shape/$target in
            put-64/etcd) etcd_shape put-64 put 64 ;;
            put-1/etcd) etcd_shape put-1 put 1 ;;
            get-64/etcd) etcd_shape get-64 get 64 ;;
            put-P16/etcd) ;; # no pipelining over etcd's gRPC unary calls
            put-64/*) kvctl_shape put-64 "$target" put 64 ;;
            put-1/*) kvctl_shape put-1 "$target" put 1 ;;
            get-64/*) kvctl_shape get-64 "$target" get 64 ;;
            put-P16/*) pipelined_shape "$target" ;;
            esac
        done
    done
done

python3 - "$out/settings.json" <<'PY'
import json, sys
path = sys.argv[1]
settings = json.load(open(path))
settings["load_after"] = " ".join(open("/proc/loadavg").read().split()[:3])
json.dump(settings, open(path, "w"), indent=1)
PY
python3 scripts/lib/speed-report.py summary "$out" >"$out/summary.md"
echo
cat "$out/summary.md"
echo "speed-report.sh: results in $out (summary.md, settings.json, run-N/*.json)"
