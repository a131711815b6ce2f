#!/usr/bin/env bash
# Side-by-side load report with `kvctl bench` (not part of the test suite): a local 3-node kvd
# cluster (release build, heartbeat-ms 50, election-timeout-ms 500) against one redis-server with
# appendonly yes, appendfsync always, driven by the same shapes one after the other:
#
#   put, get, mixed (90 % GET, zipfian keys)   closed-loop sweeps over REPORT_LEVELS clients,
#                                              each with a USL fit and an SVG plot
#   put --rate REPORT_RATE                     open loop, latency from each request's due time
#   cas, lock                                  kvd only (kvd extensions; redis has no equivalent)
#
# Everything lands in one folder: each run's JSON, each sweep's SVG, and summary.md (the
# per-level table with kvd/redis ratios and the fitted sigma, kappa, N*), also printed.
#
#   scripts/bench-report.sh [OUT-DIR]          default OUT-DIR: run/bench-report
#   REPORT_SECONDS=5 REPORT_WARMUP=1           seconds measured (and warmed up) per level
#   REPORT_LEVELS=1,2,4,8,16,32,64,128,256     client counts of the sweeps
#   REPORT_KEYS=10000 REPORT_RATE=1000 REPORT_SEED=1
#   KVD_SKIP_BUILD=1 KVD_BIN_DIR=DIR           use release binaries already built (kvd, kvctl)
set -euo pipefail
cd "$(dirname "$0")/.."

unset KVCTL_ENDPOINTS
out=${1:-run/bench-report}
seconds=${REPORT_SECONDS:-5}
warmup=${REPORT_WARMUP:-1}
levels=${REPORT_LEVELS:-1,2,4,8,16,32,64,128,256}
keys=${REPORT_KEYS:-10000}
rate=${REPORT_RATE:-1000}
seed=${REPORT_SEED:-1}

for tool in redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "bench-report.sh: $tool not found (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
source scripts/lib/local-cluster.sh
release_binaries bench-report.sh
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-bench-report-XXXXXX")
declare -A node_pid=()
redis_pid=""
cleanup() {
    # shellcheck disable=SC2086 # redis_pid is empty or one pid
    kill_and_reap "${node_pid[@]}" $redis_pid
    if [ -n "${KEEP_WORK:-}" ]; then echo "bench-report.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conf="$work/cluster.conf"
write_cluster_conf bench-report
redis_port=${ports[6]}

echo "bench-report.sh: 3-node kvd cluster in $work"
for id in 1 2 3; do start_node "$id"; done
leader=$(wait_for_leader)
kvd_endpoints="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"
echo "bench-report.sh: kvd leader is node $leader; redis-server on port $redis_port"

start_redis bench-report.sh "$redis_port"

common=(--keys "$keys" --seed "$seed" --warmup "$warmup" --duration "$seconds" --json)
# bench NAME TARGET(kvd|redis) ARGS...: one kvctl bench run, its JSON in OUT/NAME-TARGET.json.
bench() {
    local name=$1 target=$2 endpoints label
    shift 2
    if [ "$target" = kvd ]; then
        endpoints=$kvd_endpoints label="kvd, 3 nodes"
    else
        endpoints=127.0.0.1:$redis_port label="redis-server, appendfsync always"
    fi
    echo "bench-report.sh: $name on $target: kvctl bench $*"
    "$kvctl" bench --endpoints "$endpoints" --label "$label" "$@" "${common[@]}" >"$out/$name-$target.json"
}

for target in kvd redis; do
    bench put-sweep "$target" put --clients "$levels" --svg "$out/put-sweep-$target.svg"
    bench get-sweep "$target" get --clients "$levels" --svg "$out/get-sweep-$target.svg"
    bench mixed-sweep "$target" mixed --read-ratio 0.9 --distribution zipfian --clients "$levels" \
        --svg "$out/mixed-sweep-$target.svg"
    bench put-open-loop "$target" put --rate "$rate" --clients 64
done
bench cas kvd cas --clients 16
bench lock kvd lock --clients 16

python3 - "$out" "$levels" "$seconds" "$rate" >"$out/summary.md" <<'PY'
import json, os, sys
out, levels, seconds, rate = sys.argv[1:5]

def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None

def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"

def ms(run, p):
    return f"{run['latency_ms'][p]:.2f}"

print(f"# kvd (3 nodes) vs redis-server (appendfsync always), kvctl bench\n")
print(f"{seconds} s per level after warm-up; same machine, run back to back. Ratios are kvd/redis.\n")
for shape in ("put-sweep", "get-sweep", "mixed-sweep"):
    kvd, redis = load(shape + "-kvd"), load(shape + "-redis")
    print(f"## {shape}\n")
    print(f"![kvd]({shape}-kvd.svg) ![redis]({shape}-redis.svg)\n")
    print("| clients | kvd req/s | redis req/s | ratio | kvd p50/p99/p99.9 ms | redis p50/p99/p99.9 ms |")
    print("|---:|---:|---:|---:|---|---|")
    for k, r in zip(kvd["runs"], redis["runs"]):
        print(f"| {k['clients']} | {k['throughput']:.0f} | {r['throughput']:.0f} | {ratio(k['throughput'], r['throughput'])} "
              f"| {ms(k, 'p50')} / {ms(k, 'p99')} / {ms(k, 'p99.9')} | {ms(r, 'p50')} / {ms(r, 'p99')} / {ms(r, 'p99.9')} |")
    for name, result in (("kvd", kvd), ("redis", redis)):
        fit = result.get("usl")
        if fit:
            peak = f"N* = {fit['peak_clients']:.1f}" if fit["peak_clients"] else "no peak"
            print(f"\n{name}: USL lambda = {fit['lambda']:.0f} req/s, sigma = {fit['sigma']:.4f}, kappa = {fit['kappa']:.6f}, {peak}")
    print()
print(f"## put, open loop at {rate} req/s over 64 connections\n")
print("| target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | failed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for target in ("kvd", "redis"):
    run = load("put-open-loop-" + target)["runs"][0]
    lat = run["latency_ms"]
    print(f"| {target} | {run['throughput']:.0f} | {lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | {lat['p99.9']:.2f} "
          f"| {lat['max']:.2f} | {run['failed_definite'] + run['failed_indeterminate']} |")
print("\n## kvd extensions, 16 clients (redis-server has no equivalent)\n")
print("| workload | ops/s | p50 ms | p99 ms | p99.9 ms | failed |")
print("|---|---:|---:|---:|---:|---:|")
for name in ("cas", "lock"):
    run = load(name + "-kvd")["runs"][0]
    lat = run["latency_ms"]
    unit = " (lock cycles: 4 requests each)" if name == "lock" else ""
    print(f"| {name}{unit} | {run['throughput']:.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['p99.9']:.2f} "
          f"| {run['failed_definite'] + run['failed_indeterminate']} |")
PY
echo
cat "$out/summary.md"
echo
echo "bench-report.sh: results in $out (summary.md, *.json, *.svg)"
