#!/usr/bin/env bash
# What the leader's lease upkeep costs with many live leases (not part of the test suite).
#
# Starts a 3-node kvd cluster (release build, heartbeat-ms 50, election-timeout-ms 500) on free
# loopback ports with scripts/cluster.sh, measures the idle leader for BASELINE_S seconds, then
# grants LEASES leases of TTL_S seconds over pipelined connections and keeps every one alive
# every KEEPALIVE_S seconds (pipelined LEASE KEEPALIVE, as `kvctl lock` renews every TTL/3).
# Once every lease has been renewed at least once it measures, over DURATION_S seconds:
#
#   - the leader's CPU seconds per second (utime + stime, /proc/PID/stat fields 14-15);
#   - log entries committed per second (the leader's INFO commit_index);
#   - how many of those were keepalives (acknowledged by the load generator) and how many were
#     other entries, and how many leases were checkpointed in how many entries
#     (kvd_lease_checkpoints_total, kvd_lease_checkpoint_entries_total on the leader's /metrics);
#   - leases lost (a keepalive answered "lease not found": must be 0) and the worst keepalive
#     lag behind its schedule.
#
# Every wait has a deadline; the load generator and the cluster are stopped on every exit path,
# and the data (in a temporary directory under $TMPDIR) is removed unless BENCH_KEEP is set.
#
#   scripts/lease-upkeep-bench.sh                          100,000 leases, TTL 12 s, renewed every 4 s
#   TTL_S=30 KEEPALIVE_S=10 scripts/lease-upkeep-bench.sh  renewals less often than lease-checkpoint-ms
#   LEASE_CHECKPOINT_MS=15000 ...                          another checkpoint interval (default: kvd's)
#   SNAPSHOT_ENTRIES=10000000 ...                          log compactions rarely
#   LEASES=20000 DURATION_S=20 BASELINE_S=5 ...            a quicker look
#   KVD_SKIP_BUILD=1                                       use the release binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."

unset KVCTL_ENDPOINTS
leases=${LEASES:-100000}
ttl_s=${TTL_S:-12}
keepalive_s=${KEEPALIVE_S:-4}
duration_s=${DURATION_S:-60}
baseline_s=${BASELINE_S:-10}
checkpoint_ms=${LEASE_CHECKPOINT_MS:-}
snapshot_entries=${SNAPSHOT_ENTRIES:-}
bin_dir=${KVD_BIN_DIR:-.build/release}
# The load generator's limits: connections (one process each, so that several batches are in
# flight), commands per pipelined batch (below kvd's pipeline-requests-max of 1024), and how long
# the grants may take before the run is abandoned.
connections=${LOAD_CONNECTIONS:-4}
batch_max=1000
grant_timeout_s=300

for tool in redis-cli python3 curl; do
    command -v "$tool" >/dev/null || { echo "lease-upkeep-bench: $tool not found" >&2; exit 1; }
done
if [ "$keepalive_s" -ge "$ttl_s" ]; then
    echo "lease-upkeep-bench: KEEPALIVE_S ($keepalive_s) must be shorter than TTL_S ($ttl_s)" >&2
    exit 1
fi

if [ -z "${KVD_SKIP_BUILD:-}" ]; then
    echo "lease-upkeep-bench: building kvd and kvctl (release)"
    swift build -c release --product kvd >/dev/null
    swift build -c release --product kvctl >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kvd-lease-bench-XXXXXX")
conf="$work/cluster.conf"
load_pids=()
cluster() { KVD_RUN_DIR="$work/run" KVD_BIN_DIR="$bin_dir" KVD_SKIP_BUILD=1 scripts/cluster.sh "$@" "$conf"; }

cleanup() {
    local pid
    for pid in "${load_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${load_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -f "$conf" ] && cluster stop >/dev/null 2>&1 || true
    if [ -n "${BENCH_KEEP:-}" ]; then echo "lease-upkeep-bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# now_ms and free_ports; this script's own info_field, client_port and leader_id below replace
# the library's (it runs its cluster through scripts/cluster.sh, with metrics ports).
source scripts/lib/local-cluster.sh
read -r -a ports <<<"$(free_ports 9)"
{
    echo "cluster-id lease-bench"
    echo "heartbeat-ms 50"
    echo "election-timeout-ms 500"
    echo "leases-max $((leases > 100000 ? leases : 100000))"
    [ -z "$checkpoint_ms" ] || echo "lease-checkpoint-ms $checkpoint_ms"
    [ -z "$snapshot_entries" ] || echo "snapshot-entries $snapshot_entries"
    for id in 1 2 3; do
        echo "node $id peer=127.0.0.1:${ports[$((id * 3 - 3))]} client=127.0.0.1:${ports[$((id * 3 - 2))]}" \
            "metrics=127.0.0.1:${ports[$((id * 3 - 1))]}"
    done
} >"$conf"
client_port() { echo "${ports[$(($1 * 3 - 2))]}"; }
metrics_port() { echo "${ports[$(($1 * 3 - 1))]}"; }

info_field() { # NODE FIELD
    timeout 5 redis-cli -h 127.0.0.1 -p "$(client_port "$1")" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}
metric() { # NODE NAME (0 if absent)
    timeout 5 curl -s "http://127.0.0.1:$(metrics_port "$1")/metrics" |
        awk -v name="$2" '$1 == name { value = $2 } END { printf "%d\n", value + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
clock_ticks=$(getconf CLK_TCK)

# The leader's id once node 1 names one and that node agrees it leads.
leader_id() {
    local deadline=$(($(now_ms) + 20000)) id
    while [ "$(now_ms)" -lt "$deadline" ]; do
        id=$(info_field 1 leader_id)
        if [ -n "$id" ] && [ "$id" != 0 ] && [ "$(info_field "$id" role)" = leader ]; then echo "$id"; return 0; fi
        sleep 0.1
    done
    echo "lease-upkeep-bench: no leader after 20 s (BENCH_KEEP=1 keeps the logs)" >&2
    return 1
}

echo "lease-upkeep-bench: 3-node cluster in $work"
cluster start >/dev/null
leader=$(leader_id)
leader_pid=$(cat "$work/run/pids/$leader")
echo "lease-upkeep-bench: leader is node $leader (pid $leader_pid), client port $(client_port "$leader")"

echo "lease-upkeep-bench: baseline, no leases, ${baseline_s} s"
base_ticks0=$(cpu_ticks "$leader_pid")
base_commit0=$(info_field "$leader" commit_index)
base_t0=$(now_ms)
sleep "$baseline_s"
base_ticks1=$(cpu_ticks "$leader_pid")
base_commit1=$(info_field "$leader" commit_index)
base_t1=$(now_ms)

# The load generator, one process per connection, each with its share of the leases: pipelined
# batches; due keepalives go before new grants, so the first leases are renewed on time however
# long granting takes, and renewals are spread evenly over each period. Each writes its counters
# to its status file twice a second and stops at its own deadline if nobody stops it first.
cat >"$work/load.py" <<'EOF'
import heapq, os, socket, sys, time

host, port, leases, ttl_s, keepalive_s, batch_max, status_path, deadline_s = sys.argv[1:9]
leases, ttl_s, keepalive_s, batch_max, deadline_s = int(leases), int(ttl_s), float(keepalive_s), int(batch_max), float(deadline_s)
sock = socket.create_connection((host, int(port)))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
reader = sock.makefile("rb", buffering=1 << 16)

def pipeline(commands):
    out = bytearray()
    for args in commands:
        out += b"*%d\r\n" % len(args)
        for arg in args:
            out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    sock.sendall(out)
    replies = []
    for _ in commands:
        line = reader.readline()
        if not line:
            sys.exit("load: the server closed the connection")
        replies.append(line.rstrip(b"\r\n"))
    return replies

start = time.monotonic()
due = []  # heap of (due time, lease id)
granted = grant_errors = renewed = renew_errors = lost = 0
lag_max = 0.0
grant_seconds = 0.0
# Due time of the last lease granted: once it has been renewed, every lease has been.
last_grant_due = float("inf")
first_round_done = False
last_status = 0.0
ttl_arg = str(ttl_s).encode()

def write_status():
    phase = "steady" if first_round_done else "starting"
    with open(status_path + ".tmp", "w") as f:
        f.write(f"{phase} {granted} {grant_errors} {renewed} {renew_errors} {lost} {lag_max:.3f} {grant_seconds:.1f}\n")
    os.replace(status_path + ".tmp", status_path)

while time.monotonic() - start < deadline_s:
    now = time.monotonic()
    if now - last_status >= 0.5:
        write_status()
        last_status = now
    if due and due[0][0] <= now:
        batch = []
        while due and due[0][0] <= now and len(batch) < batch_max:
            batch.append(heapq.heappop(due))
        lag_max = max(lag_max, now - batch[0][0])
        replies = pipeline([[b"LEASE", b"KEEPALIVE", str(lease).encode()] for _, lease in batch])
        for (when, lease), reply in zip(batch, replies):
            if reply.startswith(b":"):
                renewed += 1
            else:
                renew_errors += 1
                if b"not found" in reply:
                    lost += 1
                    continue
            heapq.heappush(due, (when + keepalive_s, lease))
        if batch[-1][0] >= last_grant_due:
            first_round_done = True
    elif granted + grant_errors < leases:
        count = min(batch_max, leases - granted - grant_errors)
        replies = pipeline([[b"LEASE", b"GRANT", ttl_arg]] * count)
        sent_at = time.monotonic()
        for reply in replies:
            if reply.startswith(b":"):
                # Spread the renewals evenly over one period, as independent clients would be,
                # instead of in one burst per period: the i-th lease is first renewed at
                # start + i/leases of a period (or at once, if granting fell behind that).
                first = max(sent_at, start + keepalive_s * granted / leases)
                granted += 1
                heapq.heappush(due, (first, int(reply[1:])))
            else:
                grant_errors += 1
                if grant_errors <= 3:
                    print(f"load: LEASE GRANT failed: {reply.decode(errors='replace')}", file=sys.stderr)
        if granted + grant_errors == leases:
            grant_seconds = sent_at - start
            last_grant_due = max(sent_at, start + keepalive_s)
    else:
        time.sleep(min(0.05, max(0.0, due[0][0] - now)) if due else 0.05)
write_status()
EOF

echo "lease-upkeep-bench: granting $leases leases (TTL ${ttl_s} s) over $connections connections," \
    "each kept alive every ${keepalive_s} s"
for shard in $(seq 1 "$connections"); do
    share=$((leases / connections + (shard <= leases % connections ? 1 : 0)))
    python3 "$work/load.py" 127.0.0.1 "$(client_port "$leader")" "$share" "$ttl_s" "$keepalive_s" "$batch_max" \
        "$work/load-status.$shard" $((grant_timeout_s + 2 * keepalive_s + duration_s + 60)) 2>>"$work/load.log" &
    load_pids+=($!)
done

# Fields of the status files: 1 phase (starting/steady), 2 granted, 3 grant errors, 4 renewed,
# 5 renew errors, 6 leases lost, 7 worst keepalive lag (s), 8 seconds the grants took. Over all
# connections: "steady" once all are, counts summed, times the worst.
status_field() {
    cat "$work"/load-status.* 2>/dev/null | awk -v n="$1" -v files="$connections" '
        n == 1 { steady += ($1 == "steady") }
        n >= 7 { if ($n > worst) worst = $n }
        { sum += $n; lines++ }
        END {
            if (n == 1) print (lines == files && steady == files) ? "steady" : "starting"
            else if (n >= 7) printf "%.3f\n", worst
            else print sum + 0
        }'
}
deadline=$(($(now_ms) + (grant_timeout_s + 2 * keepalive_s) * 1000))
until [ "$(status_field 1)" = steady ]; do
    for pid in "${load_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "lease-upkeep-bench: load generator died: $(cat "$work/load.log")" >&2; exit 1; }
    done
    if [ "$(status_field 3)" != 0 ]; then
        echo "lease-upkeep-bench: grants failed: $(cat "$work/load.log")" >&2
        exit 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
        echo "lease-upkeep-bench: leases not all granted and renewed within $((grant_timeout_s + 2 * keepalive_s)) s:" \
            "$(status_field 2) granted, $(status_field 4) renewals, $(status_field 6) lost," \
            "worst keepalive lag $(status_field 7) s" >&2
        exit 1
    fi
    sleep 0.2
done
echo "lease-upkeep-bench: granted in $(status_field 8) s, every lease renewed once; measuring ${duration_s} s"

[ "$(info_field "$leader" role)" = leader ] || { echo "lease-upkeep-bench: node $leader lost leadership" >&2; exit 1; }
term0=$(info_field "$leader" term)
ticks0=$(cpu_ticks "$leader_pid")
commit0=$(info_field "$leader" commit_index)
renewed0=$(status_field 4)
checkpoints0=$(metric "$leader" kvd_lease_checkpoints_total)
entries0=$(metric "$leader" kvd_lease_checkpoint_entries_total)
t0=$(now_ms)
sleep "$duration_s"
ticks1=$(cpu_ticks "$leader_pid")
commit1=$(info_field "$leader" commit_index)
renewed1=$(status_field 4)
checkpoints1=$(metric "$leader" kvd_lease_checkpoints_total)
entries1=$(metric "$leader" kvd_lease_checkpoint_entries_total)
t1=$(now_ms)
leader_changes=$(($(info_field "$leader" term) - term0))
[ "$(info_field "$leader" role)" = leader ] && [ "$leader_changes" = 0 ] ||
    echo "lease-upkeep-bench: warning: node $leader lost leadership during the run: the figures include a failover" >&2

rate() { awk -v a="$1" -v ms="$2" 'BEGIN { printf "%.1f", a * 1000 / ms }'; }
cpu() { awk -v t="$1" -v hz="$clock_ticks" -v ms="$2" 'BEGIN { printf "%.3f", t / hz * 1000 / ms }'; }
window=$((t1 - t0))
entries=$((commit1 - commit0))
keepalives=$((renewed1 - renewed0))

echo
echo "Lease upkeep: $leases leases, TTL ${ttl_s} s, keepalive every ${keepalive_s} s," \
    "lease-checkpoint-ms ${checkpoint_ms:-5000 (default)}, snapshot-entries ${snapshot_entries:-10000 (default)}"
printf '  %-44s %s\n' "leader CPU, no leases (s/s):" "$(cpu $((base_ticks1 - base_ticks0)) $((base_t1 - base_t0)))"
printf '  %-44s %s\n' "log entries/s, no leases:" "$(rate $((base_commit1 - base_commit0)) $((base_t1 - base_t0)))"
printf '  %-44s %s\n' "leader CPU with the leases (s/s):" "$(cpu $((ticks1 - ticks0)) "$window")"
printf '  %-44s %s\n' "log entries/s:" "$(rate "$entries" "$window")"
printf '  %-44s %s\n' "  keepalives/s:" "$(rate "$keepalives" "$window")"
printf '  %-44s %s\n' "  other entries/s:" "$(rate $((entries - keepalives)) "$window")"
printf '  %-44s %s\n' "  of which checkpoint entries/s:" "$(rate $((entries1 - entries0)) "$window")"
printf '  %-44s %s\n' "leases checkpointed/s:" "$(rate $((checkpoints1 - checkpoints0)) "$window")"
printf '  %-44s %s\n' "leases lost (keepalive: not found):" "$(status_field 6)"
printf '  %-44s %s\n' "keepalive errors (all kinds):" "$(status_field 5)"
printf '  %-44s %s\n' "worst keepalive lag behind schedule (s):" "$(status_field 7)"
