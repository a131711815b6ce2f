#!/usr/bin/env bash
# Soak at scale (not part of the test suite): a local 3-node kvd cluster (release build,
# heartbeat-ms 50, election-timeout-ms 500, 100-byte values) taken through the scale goals of
# docs/SOAK.md, printing one line per phase and a summary:
#
#   1. a follower is killed before the load and stays down;
#   2. SOAK_KEYS distinct keys (key:000000000000 ...) are loaded through the leader at full speed
#      (SOAK_LOADERS parallel `redis-cli --pipe` streams);
#   3. the follower restarts: the entries it needs are compacted, so it catches up by snapshot,
#      while a write load runs; time until it answers and until it has applied the leader's
#      commit index as of its restart;
#   4. SOAK_MINUTES of full write load over the same keys (redis-benchmark -t set -r SOAK_KEYS
#      -d 100 -c 64); in its middle another follower is killed for SOAK_DOWN_SECONDS, restarted,
#      and timed until it answers and until it caught up;
#   5. the leader is killed and restarted: time until it answers INFO.
#
# Every second it samples each node's INFO (role, term, leader, applied index, loop iteration
# figures) and resident memory (VmRSS). Leader changes are counted from the sampled (term,
# leader) pairs over phases 1-4 (phase 5 changes the leader on purpose). All processes stop on
# exit; data and logs live in a temporary directory, removed afterwards unless SOAK_KEEP=1.
#
#   scripts/soak.sh                                1,000,000 keys, 10 minutes
#   SOAK_KEYS=10000000 scripts/soak.sh             10 million keys
#   SOAK_KEYS=200000 SOAK_MINUTES=1 SOAK_DOWN_SECONDS=20 scripts/soak.sh   a quick look
#   KVD_SKIP_BUILD=1                               use the release binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."

keys=${SOAK_KEYS:-1000000}
minutes=${SOAK_MINUTES:-10}
down_seconds=${SOAK_DOWN_SECONDS:-60}
loaders=${SOAK_LOADERS:-8}
bin_dir=${KVD_BIN_DIR:-.build/release}

for tool in redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "soak.sh: $tool not found (apt-get install redis-tools python3)" >&2; exit 1; }
done
if [ -z "${KVD_SKIP_BUILD:-}" ]; then
    echo "soak.sh: building kvd (release)"
    swift build -c release --product kvd >/dev/null
fi
kvd="$PWD/$bin_dir/kvd"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-soak-XXXXXX")
declare -A node_pid=()
background=()

cleanup() {
    local pid
    for pid in "${background[@]}" "${node_pid[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${background[@]}" "${node_pid[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${SOAK_KEEP:-}${KEEP_WORK:-}" ]; then echo "soak.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source scripts/lib/local-cluster.sh
conf="$work/cluster.conf"
write_cluster_conf soak
samples="$work/samples.tsv"
say() { printf '%s soak.sh: %s\n' "$(date +%T)" "$*"; }

# One line per node per second: ms phase node pid role term leader applied loop_max_us loop_p999_us rss_kb
phase=setup
sample_forever() {
    local id seen rss pid
    while true; do
        for id in 1 2 3; do
            pid=$(cat "$work/node$id.pid" 2>/dev/null || true)
            seen=$(timeout 2 redis-cli -h 127.0.0.1 -p "$(client_port "$id")" INFO 2>/dev/null | tr -d '\r' || true)
            rss=$( [ -n "$pid" ] && awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(now_ms)" "$(cat "$work/phase")" "$id" "${pid:-0}" \
                "$(sed -n 's/^role://p' <<<"$seen")" "$(sed -n 's/^term://p' <<<"$seen")" \
                "$(sed -n 's/^leader_id://p' <<<"$seen")" "$(sed -n 's/^applied_index://p' <<<"$seen")" \
                "$(sed -n 's/^loop_iteration_max_us://p' <<<"$seen")" "$(sed -n 's/^loop_iteration_p999_us://p' <<<"$seen")" \
                "${rss:-0}" >>"$samples"
        done
        sleep 1
    done
}
set_phase() { phase=$1; echo "$1" >"$work/phase"; say "phase: $1"; }

# Waits until NODE answers INFO; prints the milliseconds since START.
wait_answers() { # NODE START TIMEOUT-MS
    local deadline=$(($2 + $3))
    until redis-cli -h 127.0.0.1 -p "$(client_port "$1")" INFO >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "timeout"; return 0; }
        sleep 0.02
    done
    echo $(($(now_ms) - $2))
}

# Waits until NODE has applied TARGET; prints the milliseconds since START.
wait_applied() { # NODE TARGET START TIMEOUT-MS
    local deadline=$(($3 + $4)) applied
    until applied=$(info_field "$1" applied_index) && [ -n "$applied" ] && [ "$applied" -ge "$2" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "timeout"; return 0; }
        sleep 0.1
    done
    echo $(($(now_ms) - $3))
}

# A write load over the loaded keys for SECONDS (bounded); its output goes to FILE.
write_load() { # LEADER SECONDS CLIENTS FILE
    timeout "$2" redis-benchmark -h 127.0.0.1 -p "$(client_port "$1")" -t set -r "$keys" -d 100 -c "$3" -n 2000000000 \
        -q >"$4" 2>&1 || true
}

echo "setup" >"$work/phase"
say "3-node cluster in $work; $keys keys, $minutes min of load, a follower down ${down_seconds} s"
for id in 1 2 3; do start_node "$id"; done
leader=$(wait_for_leader)
sample_forever &
background+=($!)

set_phase "1-follower-down"
stopped=$(( leader % 3 + 1 ))
kill -KILL "${node_pid[$stopped]}"; wait "${node_pid[$stopped]}" 2>/dev/null || true; unset "node_pid[$stopped]"
say "leader is node $leader; node $stopped killed before the load"

set_phase "2-load"
start=$(now_ms)
for loader in $(seq 0 $((loaders - 1))); do
    python3 - "$keys" "$loaders" "$loader" <<'PY' | redis-cli -h 127.0.0.1 -p "$(client_port "$leader")" --pipe --pipe-timeout 120 >"$work/loader$loader.out" 2>&1 &
import sys
keys, loaders, me = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
value = b"v" * 100
out = sys.stdout.buffer
batch = []
for i in range(me, keys, loaders):
    key = b"key:%012d" % i
    batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, value))
    if len(batch) == 1000:
        out.write(b"".join(batch))
        batch = []
out.write(b"".join(batch))
PY
    background+=($!)
done
wait "${background[@]:1}" 2>/dev/null || true
background=("${background[0]}")
load_ms=$(($(now_ms) - start))
load_errors=$(awk '/errors:/ { gsub(",", ""); sum += $2 } END { print sum + 0 }' "$work"/loader*.out)
load_replies=$(awk '/replies:/ { for (i = 1; i <= NF; i++) if ($i == "replies:") sum += $(i + 1) } END { print sum + 0 }' "$work"/loader*.out)
say "loaded $load_replies replies ($load_errors errors) in $load_ms ms: $(( load_replies * 1000 / (load_ms > 0 ? load_ms : 1) )) SET/s"

set_phase "3-snapshot-catch-up"
leader=$(wait_for_leader)
target=$(info_field "$leader" commit_index)
write_load "$leader" 600 16 "$work/catchup-load.out" &
catchup_load=$!
background+=($catchup_load)
start=$(now_ms)
start_node "$stopped"
answered=$(wait_answers "$stopped" "$start" 60000)
caught_up=$(wait_applied "$stopped" "$target" "$start" 900000)
kill -TERM "$catchup_load" 2>/dev/null || true
say "node $stopped (down during the load) answered after $answered ms, applied the leader's commit $target after $caught_up ms"

set_phase "4-write-load"
leader=$(wait_for_leader)
write_load "$leader" $((minutes * 60)) 64 "$work/soak-load.out" &
soak_load=$!
background+=($soak_load)
soak_start=$(now_ms)
sleep $((minutes * 30 > down_seconds ? minutes * 30 - down_seconds / 2 : 1))
victim=$(( leader % 3 + 1 ))
kill -KILL "${node_pid[$victim]}"; wait "${node_pid[$victim]}" 2>/dev/null || true; unset "node_pid[$victim]"
say "node $victim killed under load for $down_seconds s"
sleep "$down_seconds"
target=$(info_field "$leader" commit_index)
start=$(now_ms)
start_node "$victim"
down_answered=$(wait_answers "$victim" "$start" 60000)
down_caught_up=$(wait_applied "$victim" "$target" "$start" 600000)
say "node $victim answered $down_answered ms after restart, caught up $down_caught_up ms after restart"
wait "$soak_load" 2>/dev/null || true
soak_ms=$(($(now_ms) - soak_start))
soak_summary=$(tr '\r' '\n' <"$work/soak-load.out" | grep -E 'overall|Error|ERR|NOTLEADER' | tail -n 1 || true)
soak_errors=$( (tr '\r' '\n' <"$work/soak-load.out" | grep -cE 'Error|ERR|NOTLEADER') || true)
say "write load ran $soak_ms ms: $soak_summary"

set_phase "5-leader-restart"
leader=$(wait_for_leader)
kill -KILL "${node_pid[$leader]}"; wait "${node_pid[$leader]}" 2>/dev/null || true; unset "node_pid[$leader]"
start=$(now_ms)
start_node "$leader"
leader_answered=$(wait_answers "$leader" "$start" 60000)
say "old leader $leader answered $leader_answered ms after restart"
sleep 2

kill -KILL "${background[0]}" 2>/dev/null || true
wait "${background[0]}" 2>/dev/null || true
background=()
data_mb=$(du -sm "$work/data/$leader" | awk '{ print $1 }')

echo
echo "Summary: $keys keys of 100 bytes, 3 nodes, heartbeat 50 ms, election timeout 500 ms (data dir of one node: $data_mb MB)"
awk -F'\t' -v keys="$keys" '
    $2 != "5-leader-restart" && $5 == "leader" && $6 != "" { pair = $6 "/" $3; if (!(pair in seen)) { seen[pair] = 1; leaders++ } }
    $9 != "" && $9 + 0 > loopmax[$3] { loopmax[$3] = $9 + 0 }
    $10 != "" && $10 + 0 > p999[$3] { p999[$3] = $10 + 0 }
    $11 + 0 > rss[$3] { rss[$3] = $11 + 0 }
    END {
        printf "  leader changes in phases 1-4: %d (distinct term/leader pairs seen: %d)\n", leaders - 1, leaders
        for (n = 1; n <= 3; n++)
            printf "  node %d: max RSS %d MB, longest loop iteration %.1f ms, loop p99.9 (worst sample) %.1f ms\n", n, rss[n] / 1024, loopmax[n] / 1000, p999[n] / 1000
    }' "$samples"
echo "  load: $load_replies SETs ($load_errors errors) in $load_ms ms"
echo "  follower down during the load: answered after $answered ms, caught up (by snapshot) after $caught_up ms"
echo "  follower killed $down_seconds s under load: answered $down_answered ms after restart, caught up $down_caught_up ms after restart"
echo "  write load: $soak_ms ms, error lines: $soak_errors; $soak_summary"
echo "  leader restart: answered $leader_answered ms after start"
grep -h "snapshot installed\|snapshot sent\|slow raft loop" "$work"/node*.log | tail -n 12 | sed 's/^/  log: /'
