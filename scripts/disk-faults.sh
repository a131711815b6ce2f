#!/usr/bin/env bash
# Node-local faults on real processes (not part of the test suite; needs root for mount). Each
# sub-test runs a fresh local 3-node kvd cluster (release build, heartbeat-ms 50,
# election-timeout-ms 500) under a write load whose acknowledged writes are recorded (key and a
# digest of the value, scripts/lib/acked-writes.py), faults node 1 — as a follower, then as the
# leader (leadership is handed to it first) — and then requires:
#
#   - every acknowledged write reads back intact through the leader (linearizable GET);
#   - the faulted node either kept working or fail-stopped: exited non-zero with a clear `kvd:`
#     line — never a trap or stack trace, never alive but stuck;
#   - once the fault is gone and the node restarted, it catches up to the leader and serves every
#     acknowledged write intact from its own copy (READONLY local reads).
#
# The faults:
#   full-disk  node 1's data directory is a small file system (a loop-mounted ext4 image of
#              DISK_FAULTS_FS_MB, default 24 MB; tmpfs if loop devices are not available) that
#              the load fills; afterwards it is grown to 512 MB and the node restarted.
#   fsync      node 1 runs with scripts/faults/failing-fsync.c preloaded (built here with gcc):
#              after a trigger file appears, every fsync/fdatasync/sync_file_range/syncfs fails
#              with EIO. It must fail-stop (a node that went on after a failed fsync may have
#              acknowledged what is not on disk); it is restarted without the shim.
#   clock      node 1 runs under libfaketime (DONT_FAKE_MONOTONIC=1, offset from a file read on
#              every call) and its wall clock jumps 3 hours forward, then 3 hours back. A lock
#              held by `kvctl lock` (lease kept alive) must stay held with the same fencing token,
#              a lease that nobody keeps alive must end neither before its TTL nor much after,
#              and the next holder of the lock must get a higher token.
#
# PASS/FAIL/SKIP per sub-test and a summary; exits 1 if any sub-test failed. A sub-test that this
# machine cannot run (no root, mount refused, no gcc, libfaketime missing) is SKIPPED with a loud
# message. Missing Debian packages (faketime, e2fsprogs) are installed the way
# scripts/install-deps.sh does. Everything started is stopped, file systems unmounted and the
# temporary directory removed on exit (kept with DISK_FAULTS_KEEP=1, or when a sub-test fails).
#
#   scripts/disk-faults.sh                              all sub-tests
#   DISK_FAULTS_ONLY=fsync,clock scripts/disk-faults.sh some of them (full-disk, fsync, clock)
#   KVD_SKIP_BUILD=1 KVD_BIN_DIR=/path/to/bin           use binaries already built (kvd, kvctl)
set -euo pipefail

# The small file systems are mounted in a mount namespace of this script's own: a namespace that
# another program creates meanwhile (a fault harness running kvd in network namespaces, say)
# would otherwise take a copy of the mount and keep the file system alive and in use after this
# script unmounts it, so it could not be checked and grown offline.
if [ "$(id -u)" -eq 0 ] && [ -z "${DISK_FAULTS_OWN_MOUNTS:-}" ] && command -v unshare >/dev/null &&
    unshare --mount --propagation private true 2>/dev/null; then
    DISK_FAULTS_OWN_MOUNTS=1 exec unshare --mount --propagation private "$0" "$@"
fi
cd "$(dirname "$0")/.."

only=${DISK_FAULTS_ONLY:-full-disk,fsync,clock}
fs_mb=${DISK_FAULTS_FS_MB:-24}
bin_dir=${KVD_BIN_DIR:-.build/release}
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1

for tool in redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "disk-faults.sh: $tool not found (apt-get install redis-tools python3)" >&2; exit 1; }
done

# Debian packages the sub-tests use, installed only when missing (as scripts/install-deps.sh).
missing=()
for package in faketime e2fsprogs; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if ((${#missing[@]})); then
    echo "disk-faults.sh: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    { "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"; } >/dev/null ||
        echo "disk-faults.sh: could not install ${missing[*]}; the sub-tests that need them will be skipped" >&2
fi

if [ -z "${KVD_SKIP_BUILD:-}" ]; then
    echo "disk-faults.sh: building kvd and kvctl (release)"
    swift build -c release --product kvd >/dev/null
    swift build -c release --product kvctl >/dev/null
fi
case "$bin_dir" in /*) ;; *) bin_dir="$PWD/$bin_dir" ;; esac
kvd="$bin_dir/kvd"
kvctl="$bin_dir/kvctl"
for binary in "$kvd" "$kvctl"; do [ -x "$binary" ] || { echo "disk-faults.sh: no $binary" >&2; exit 1; }; done

root=$(mktemp -d "${TMPDIR:-/tmp}/kvd-disk-faults-XXXXXX")
declare -A node_pid=()
all_pids=()      # every kvd started, for cleanup
helpers=()       # writers and lock holders
mounts=()        # mount points, unmounted on exit (last first)
keep=${DISK_FAULTS_KEEP:-}

cleanup() {
    local pid i
    for pid in "${helpers[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${all_pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${helpers[@]}" "${all_pids[@]}"; do { wait "$pid"; } 2>/dev/null || true; done
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" 2>/dev/null || true
    done
    for image in "$root"/*-fs.img; do [ -e "$image" ] && detach_loops "$image"; done
    if [ -n "$keep" ]; then echo "disk-faults.sh: kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source scripts/lib/local-cluster.sh

say() { printf '%s disk-faults.sh: %s\n' "$(date +%T)" "$*"; }
loud() { printf '\n!!!!!!!! %s\n\n' "$*"; }
results=()
record() { # VERDICT NAME DETAIL
    results+=("$(printf '%-4s %-18s %s' "$1" "$2" "$3")")
    say "$1 $2: $3"
    [ "$1" != FAIL ] || keep=1
}

# A fresh cluster directory and configuration (nodes are started by the sub-test).
new_cluster() { # NAME
    work="$root/$1"
    mkdir -p "$work/data/1" "$work/data/2" "$work/data/3"
    conf="$work/cluster.conf"
    node_pid=()
    write_cluster_conf "$1"
    endpoints="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"
    client_ports="$(client_port 1),$(client_port 2),$(client_port 3)"
}

# Starts node ID like start_node, with extra environment (NAME=VALUE...) for this kvd only.
start_env() { # ID [NAME=VALUE...]
    local id=$1
    shift
    env "$@" "$kvd" --config "$conf" --id "$id" --data-dir "$work/data/$id" >>"$work/node$id.log" 2>&1 &
    node_pid[$id]=$!
    echo "$!" >"$work/node$id.pid"
    all_pids+=("$!")
}

alive() { kill -0 "${node_pid[$1]}" 2>/dev/null; }

# Waits up to TIMEOUT-MS for node ID's process to end; sets exit_status (empty if still alive).
wait_exit() { # ID TIMEOUT-MS
    local deadline=$(($(now_ms) + $2))
    exit_status=""
    while alive "$1"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
    set +e
    wait "${node_pid[$1]}" 2>/dev/null
    exit_status=$?
    set -e
    return 0
}

stop_node() { # ID: graceful stop (SIGTERM), then SIGKILL after 10 s
    alive "$1" || return 0
    kill -TERM "${node_pid[$1]}" 2>/dev/null || true
    wait_exit "$1" 10000 || { kill -KILL "${node_pid[$1]}" 2>/dev/null || true; wait_exit "$1" 5000 || true; }
}

# Hands leadership to node ID and waits until every node agrees.
transfer_to() { # ID
    local deadline=$(($(now_ms) + 20000)) current
    while true; do
        current=$(leader_id || true)
        [ "$current" = "$1" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || { say "could not hand leadership to node $1"; return 1; }
        "$kvctl" --endpoints "$endpoints" --timeout 5 leader transfer "$1" >/dev/null 2>&1 || true
        sleep 0.3
    done
}

# Waits until NODE has applied at least what the current leader has applied.
wait_caught_up() { # NODE TIMEOUT-MS
    local deadline=$(($(now_ms) + $2)) applied target leader
    while true; do
        leader=$(leader_id || true)
        if [ -n "$leader" ]; then
            applied=$(info_field "$1" applied_index)
            target=$(info_field "$leader" applied_index)
            if [ -n "$applied" ] && [ -n "$target" ] && [ "$applied" -ge "$target" ]; then return 0; fi
        fi
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

start_writer() { # PREFIX VALUE-BYTES WORKERS
    rm -f "$work/stop-writer"
    python3 scripts/lib/acked-writes.py write --ports "$client_ports" --log "$work/acked.tsv" --prefix "$1" \
        --value-bytes "$2" --workers "$3" --stop-file "$work/stop-writer" >"$work/writer.out" 2>&1 &
    writer_pid=$!
    helpers+=("$writer_pid")
}

stop_writer() {
    touch "$work/stop-writer"
    { wait "$writer_pid"; } 2>/dev/null || true
    say "writer: $(cat "$work/writer.out")"
}

# Every acknowledged write, through the leader; extra arguments: --node N --readonly.
check_acked() {
    python3 scripts/lib/acked-writes.py check --ports "$client_ports" --log "$work/acked.tsv" "$@" >"$work/check.out" 2>&1
}

crash_signs() { # LOG: lines that show a trap, a crash or a stack trace
    grep -E -m 5 'Fatal error|Stack dump|Current stack trace|Illegal instruction|Segmentation fault|Trace/breakpoint|Program crashed|Backtrace|SIGILL|SIGSEGV|SIGTRAP|SIGBUS' "$1" || true
}

# How the faulted node 1 ended up: sets outcome (fail-stop | kept-working | crashed | hung | silent-exit)
# and evidence. FAULT-MS is how long to wait for it to stop after the fault began.
judge_node1() { # WAIT-MS
    local log="$work/node1.log" crash line
    outcome=""
    evidence=""
    if wait_exit 1 "$1"; then
        crash=$(crash_signs "$log")
        line=$(grep -E '^kvd: ' "$log" | tail -n 1 || true)
        if [ -n "$crash" ] || [ "$exit_status" -gt 128 ]; then
            outcome=crashed
            evidence="exit status $exit_status; ${crash:-killed by signal $((exit_status - 128))}"
        elif [ "$exit_status" -ne 0 ] && [ -n "$line" ]; then
            outcome=fail-stop
            evidence="exit status $exit_status; last line: $line"
        else
            outcome=silent-exit
            evidence="exit status $exit_status without a clear 'kvd:' line; log tail: $(tail -n 2 "$log" | tr '\n' ' ')"
        fi
        return 0
    fi
    # Still running: it must answer and keep up once the load stops.
    if redis-cli -h 127.0.0.1 -p "$(client_port 1)" PING >/dev/null 2>&1 && wait_caught_up 1 30000; then
        outcome=kept-working
        evidence="still running, answers and has applied what the leader has"
    else
        outcome=hung
        evidence="still running but does not answer or does not catch up within 30 s; log tail: $(tail -n 2 "$log" | tr '\n' ' ')"
    fi
}

# After the fault: restart node 1 (REASON), wait until it caught up, read every acknowledged
# write from its own copy. Sets after (a sentence) and returns non-zero on failure.
restart_and_verify() {
    local start
    stop_node 1
    start=$(now_ms)
    start_env 1
    if ! wait_caught_up 1 120000; then
        after="restarted node 1 did not catch up within 120 s (log tail: $(tail -n 2 "$work/node1.log" | tr '\n' ' '))"
        return 1
    fi
    local caught=$(($(now_ms) - start))
    if ! check_acked --node 1 --readonly; then
        after="restarted node 1 caught up in $caught ms but its copy is wrong: $(tr '\n' ' ' <"$work/check.out")"
        return 1
    fi
    after="restarted node 1 caught up in $caught ms and read back $(sed -n 's/^checked=\([0-9]*\).*/\1/p' "$work/check.out") acknowledged writes intact"
    local crash
    crash=$(crash_signs "$work/node1.log")
    if [ -n "$crash" ]; then after="$after, but its log shows: $crash"; return 1; fi
    return 0
}

final_check() { # NAME: every acknowledged write through the leader; appends to detail
    if check_acked; then
        detail="$detail; leader check: $(head -n 1 "$work/check.out")"
        return 0
    fi
    detail="$detail; LEADER CHECK FAILED: $(tr '\n' ' ' <"$work/check.out")"
    return 1
}

stop_cluster() {
    local id
    for pid in "${helpers[@]}"; do kill -KILL "$pid" 2>/dev/null || true; { wait "$pid"; } 2>/dev/null || true; done
    helpers=()
    for id in "${!node_pid[@]}"; do stop_node "$id"; done
}

# Puts node 1 as follower or leader: hands leadership to it, or away from it.
place_node1() { # ROLE
    local leader
    leader=$(wait_for_leader)
    if [ "$1" = leader ]; then
        transfer_to 1
    elif [ "$leader" = 1 ]; then
        transfer_to 2
    fi
}

# ---------------------------------------------------------------------------------------------
# 1. Full disk

make_small_fs() { # MOUNTPOINT: sets fs_kind, fs_image; returns 1 if this machine cannot
    local mnt=$1
    fs_image="$root/$(basename "$(dirname "$(dirname "$mnt")")")-fs.img"
    if [ "$(id -u)" -ne 0 ]; then fs_kind="none (not root)"; return 1; fi
    if command -v mkfs.ext4 >/dev/null && truncate -s "${fs_mb}M" "$fs_image" && mkfs.ext4 -q -F "$fs_image" >/dev/null 2>&1 &&
        mount -o loop "$fs_image" "$mnt" 2>/dev/null; then
        mounts+=("$mnt")
        fs_kind="ext4 on a loop device, ${fs_mb} MB"
        return 0
    fi
    rm -f "$fs_image"
    fs_image=""
    if mount -t tmpfs -o "size=${fs_mb}m" tmpfs "$mnt" 2>/dev/null; then
        mounts+=("$mnt")
        fs_kind="tmpfs, ${fs_mb} MB (loop mount refused)"
        return 0
    fi
    fs_kind="none (mount refused)"
    return 1
}

grow_fs() { # MOUNTPOINT: 512 MB, data kept; returns 1 with grow_error if it cannot
    local mnt=$1 out size_mb tries
    grow_error=""
    if [ -n "$fs_image" ]; then
        tries=0
        until out=$(umount "$mnt" 2>&1); do
            tries=$((tries + 1))
            [ "$tries" -lt 20 ] || { grow_error="umount: $out"; return 1; }
            sleep 0.5
        done
        # A loop device left attached to the image would be reused by the next mount with the
        # old size: detach them all first.
        detach_loops "$fs_image"
        truncate -s 512M "$fs_image"
        # e2fsck exits 0 once the file system is clean (1 when it fixed something, such as the
        # free-block counts ext4 leaves approximate); resize2fs wants a clean one.
        for tries in 1 2 3; do e2fsck -f -y "$fs_image" >"$work/e2fsck.out" 2>&1 && break; done
        out=$(resize2fs "$fs_image" 2>&1) || { grow_error="resize2fs: $out"; return 1; }
        out=$(mount -o loop "$fs_image" "$mnt" 2>&1) || { grow_error="mount: $out"; return 1; }
    else
        out=$(mount -o remount,size=512m "$mnt" 2>&1) || { grow_error="remount: $out"; return 1; }
    fi
    size_mb=$(df -m --output=size "$mnt" | tail -n 1 | tr -d ' ')
    [ "$size_mb" -ge 256 ] || { grow_error="the file system is still ${size_mb} MB after growing it: $(tr '\n' ' ' <<<"$out")"; return 1; }
}

detach_loops() { # IMAGE: detaches every loop device backed by IMAGE
    local device tries=0
    while device=$(losetup -j "$1" 2>/dev/null | cut -d: -f1 | head -n 1) && [ -n "$device" ]; do
        losetup -d "$device" 2>/dev/null || true
        tries=$((tries + 1))
        [ "$tries" -lt 20 ] || return 0
        sleep 0.2
    done
}

test_full_disk() { # ROLE
    local role=$1 name="full-disk/$1" used
    new_cluster "full-disk-$role"
    if ! make_small_fs "$work/data/1"; then
        loud "SKIPPED $name: cannot make a small file system here: $fs_kind"
        record SKIP "$name" "cannot make a small file system: $fs_kind"
        return 0
    fi
    say "$name: node 1's data directory is $fs_kind"
    for id in 1 2 3; do start_env "$id"; done
    place_node1 "$role" || { record FAIL "$name" "could not make node 1 the $role"; stop_cluster; return 0; }
    say "$name: node 1 is the $role; writing 4 KB values from 4 connections until its disk fills"
    start_writer full 4096 4
    judge_node1 120000
    used=$(df -h --output=used,size "$work/data/1" | tail -n 1 | tr -s ' ')
    sleep 2   # the survivors go on taking writes
    stop_writer
    say "$name: node 1 $outcome ($evidence); its file system: used/size$used"
    detail="node 1 ($role) $outcome: $evidence"
    local ok=1
    case "$outcome" in fail-stop | kept-working) ;; *) ok=0 ;; esac
    final_check || ok=0
    stop_node 1
    if ! grow_fs "$work/data/1"; then
        record FAIL "$name" "$detail; could not grow the file system: $grow_error"
        stop_cluster
        return 0
    fi
    if restart_and_verify; then detail="$detail; freed space: $after"; else detail="$detail; freed space: $after"; ok=0; fi
    final_check || ok=0
    stop_cluster
    if ((ok)); then record PASS "$name" "$detail"; else record FAIL "$name" "$detail"; fi
    # The file system is unmounted at exit; unmount now so that the next cluster starts clean.
    umount "$work/data/1" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# 2. Failing fsync

shim=""
build_shim() {
    [ -n "$shim" ] && return 0
    command -v gcc >/dev/null || return 1
    shim="$root/failing-fsync.so"
    gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$shim" scripts/faults/failing-fsync.c -ldl || { shim=""; return 1; }
}

test_fsync() { # ROLE [FILES: only fsyncs of files whose path contains this fail]
    local role=$1 files=${2:-} name="fsync-eio/$1" trigger failed_calls retries
    [ -z "$files" ] || name="fsync-eio/$files/$role"
    if ! build_shim; then
        loud "SKIPPED $name: cannot build scripts/faults/failing-fsync.c (gcc missing or failing)"
        record SKIP "$name" "no gcc"
        return 0
    fi
    new_cluster "fsync-$role${files:+-${files//./-}}"
    trigger="$work/fsync-fails-now"
    start_env 1 "LD_PRELOAD=$shim" "FAILING_FSYNC_TRIGGER=$trigger" "FAILING_FSYNC_FILES=$files"
    start_env 2
    start_env 3
    place_node1 "$role" || { record FAIL "$name" "could not make node 1 the $role"; stop_cluster; return 0; }
    start_writer fsync 200 4
    sleep 3
    say "$name: node 1 is the $role; its fsyncs${files:+ of *$files*} fail from now on"
    touch "$trigger"
    judge_node1 30000
    sleep 2
    stop_writer
    failed_calls=$(sed -n 's/^failing-fsync: \([0-9]*\) calls failed$/\1/p' "$work/node1.log" | tail -n 1)
    detail="node 1 ($role) $outcome: $evidence; first failure: $(grep -m 1 '^failing-fsync: .*EIO' "$work/node1.log" || echo none); failed fsync calls in all: ${failed_calls:-unknown}"
    say "$name: $detail"
    local ok=1
    [ "$outcome" = fail-stop ] || ok=0
    if [ "$outcome" = kept-working ]; then detail="$detail (it must stop: it went on after fsync failed)"; fi
    # A failed background checkpoint that is logged and tried again is an fsync retried after EIO.
    retries=$(grep -c 'background checkpoint of .* failed' "$work/node1.log" || true)
    if [ "$retries" -gt 0 ]; then
        ok=0
        detail="$detail; it carried on after EIO: $retries background checkpoint failure(s) logged and tried again, first: $(grep -m 1 'background checkpoint of .* failed' "$work/node1.log" | cut -c1-300)"
    fi
    final_check || ok=0
    if restart_and_verify; then detail="$detail; without the shim: $after"; else detail="$detail; without the shim: $after"; ok=0; fi
    final_check || ok=0
    stop_cluster
    if ((ok)); then record PASS "$name" "$detail"; else record FAIL "$name" "$detail"; fi
}

# ---------------------------------------------------------------------------------------------
# 3. Wall-clock jumps

lock_token() { # FILE: the first token printed by kvctl lock
    sed -n '1{/^[0-9][0-9]*$/p}' "$1"
}

# The lock's current holder token (OWNER through the leader), or empty.
lock_owner_token() { # NAME
    local leader
    leader=$(leader_id || true)
    [ -n "$leader" ] || return 0
    redis-cli -h 127.0.0.1 -p "$(client_port "$leader")" OWNER "$1" 2>/dev/null | sed -n 2p
}

lease_exists() { # ID: 0 if the lease exists, 1 if not found, 2 if no answer
    local out
    out=$("$kvctl" --endpoints "$endpoints" --timeout 3 lease ttl "$1" 2>&1) && return 0
    grep -qi 'not found\|no such\|unknown lease' <<<"$out" && return 1
    return 2
}

# How node 1's wall clock is moved: libfaketime if a Swift program keeps its arguments under it,
# else scripts/faults/wall-clock-offset.c (built here). Sets clock_env (NAME=VALUE...).
clock_shim=""
choose_clock_shim() {
    local probe
    clock_env=()
    if [ -r "$faketime_lib" ]; then
        echo "+0" >"$work/faketime"
        probe=$(env LD_PRELOAD="$faketime_lib" FAKETIME_TIMESTAMP_FILE="$work/faketime" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
            "$kvd" --config "$work/no-such-file" --id 1 2>&1 || true)
        if grep -q 'no-such-file' <<<"$probe"; then
            clock_shim=libfaketime
            clock_env=("LD_PRELOAD=$faketime_lib" "FAKETIME_TIMESTAMP_FILE=$work/faketime" FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1)
            return 0
        fi
        loud "libfaketime ($faketime_lib) breaks kvd: under it kvd says '$(head -n 1 <<<"$probe")'; using scripts/faults/wall-clock-offset.c instead"
    fi
    command -v gcc >/dev/null || return 1
    gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$root/wall-clock-offset.so" scripts/faults/wall-clock-offset.c -ldl || return 1
    echo 0 >"$work/clock-offset"
    clock_shim=wall-clock-offset
    clock_env=("LD_PRELOAD=$root/wall-clock-offset.so" "WALL_CLOCK_OFFSET_FILE=$work/clock-offset")
}

set_clock() { # OFFSET-SECONDS (signed)
    local seconds=$1 shown
    if [ "$clock_shim" = libfaketime ]; then
        [ "${seconds:0:1}" = - ] && echo "$seconds" >"$work/faketime" || echo "+$seconds" >"$work/faketime"
    else
        echo "$seconds" >"$work/clock-offset"
    fi
    shown=$(env "${clock_env[@]}" date -u +%H:%M:%S)
    say "clock: node 1's wall clock is moved by $seconds s: it reads $shown, the real time is $(date -u +%H:%M:%S)"
}

test_clock() {
    local name="clock-jump" problems=() session session_before session_after session_note="" lock_pid token1 token2 token3 owner lease grant_start grant_end gone phase ttl_s=8
    new_cluster clock
    if ! choose_clock_shim; then
        loud "SKIPPED $name: neither libfaketime nor gcc (for scripts/faults/wall-clock-offset.c) can move kvd's clock here"
        record SKIP "$name" "no way to move the wall clock"
        return 0
    fi
    name="clock-jump/$clock_shim"
    say "$name: node 1's wall clock is moved with $clock_shim (the monotonic clock is left alone)"
    start_env 1 "${clock_env[@]}"
    start_env 2
    start_env 3
    start_writer clock 100 2
    "$kvctl" --endpoints "$endpoints" lock clock-lock --ttl 3 >"$work/lock1.out" 2>"$work/lock1.err" &
    lock_pid=$!
    helpers+=("$lock_pid")
    local deadline=$(($(now_ms) + 20000))
    until token1=$(lock_token "$work/lock1.out") && [ -n "$token1" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 0.1
    done
    [ -n "$token1" ] || problems+=("kvctl lock got no token: $(cat "$work/lock1.err")")
    say "$name: lock clock-lock held with token ${token1:-none} by a kvctl lock that keeps its 3 s lease alive"
    local previous=${token1:-0}
    for phase in follower leader; do
        place_node1 "$phase" || { problems+=("could not make node 1 the $phase"); continue; }
        say "$name: node 1 (its wall clock to be moved) is the $phase"
        grant_start=$(now_ms)
        lease=$("$kvctl" --endpoints "$endpoints" lease grant "$ttl_s" 2>&1) || { problems+=("lease grant failed: $lease"); lease=""; }
        grant_end=$(now_ms)
        # A client session used just before the jumps and again just after them (4 s apart).
        session=$(timeout 10 redis-cli -h 127.0.0.1 -p "$(client_port 1)" SESSION REGISTER 2>&1 || true)
        session_before=$(timeout 10 redis-cli -h 127.0.0.1 -p "$(client_port 1)" SESSION "$session" 1 SET clock-session before 2>&1 || true)
        set_clock 10800
        sleep 2
        set_clock -10800
        sleep 2
        set_clock 0
        if [ "$phase" = leader ]; then
            session_after=$(timeout 10 redis-cli -h 127.0.0.1 -p "$(client_port 1)" SESSION "$session" 2 SET clock-session after 2>&1 || true)
            session_note="session $session used before the jumps ($session_before) and 4 s later ($session_after)"
            say "$name: $phase: $session_note"
            case "$session_after" in SESSIONEXPIRED*)
                session_note="$session_note: NOTE a forward jump of the leader's wall clock expires every client session (state-machine time is the highest leader-stamped wall time)" ;;
            esac
        fi
        # The unrenewed lease: alive until TTL after its grant, gone by TTL + lease-checkpoint-ms + 2 s.
        gone=""
        if [ -n "$lease" ]; then
            while true; do
                local state=0
                lease_exists "$lease" || state=$?
                if [ "$state" -eq 1 ]; then gone=$(now_ms); break; fi
                [ "$(now_ms)" -lt $((grant_end + ttl_s * 1000 + 7000)) ] || break
                sleep 0.2
            done
            if [ -z "$gone" ]; then
                problems+=("$phase: lease $lease ($ttl_s s, not kept alive) still there $(($(now_ms) - grant_end)) ms after its grant")
            elif [ $((gone - grant_start)) -lt $((ttl_s * 1000)) ]; then
                problems+=("$phase: lease $lease ($ttl_s s) ended EARLY, at most $((gone - grant_start)) ms after its grant began")
            fi
            say "$name: $phase: lease $lease of $ttl_s s, not kept alive, was found gone $((${gone:-0} - grant_start)) ms after its grant began (it must be >= $((ttl_s * 1000)))"
        fi
        # The kept-alive lock: still held by the first kvctl, with its token.
        owner=$(lock_owner_token clock-lock)
        if ! kill -0 "$lock_pid" 2>/dev/null; then
            problems+=("$phase: the kvctl lock holder exited: $(tr '\n' ' ' <"$work/lock1.err")")
        elif [ "$owner" != "$token1" ]; then
            problems+=("$phase: lock clock-lock is held with token '${owner}', not the holder's ${token1}")
        fi
        say "$name: $phase: lock clock-lock holder token ${owner:-none} (the kvctl holder got $token1 and is $(kill -0 "$lock_pid" 2>/dev/null && echo running || echo GONE))"
        # The next holder after a release gets a higher token.
        token2=$("$kvctl" --endpoints "$endpoints" lock clock-lock-2 --ttl 3 --timeout 10 -- sh -c 'echo $KVD_LOCK_TOKEN' 2>"$work/lock2.err") || token2=""
        if [ -z "$token2" ] || [ "$token2" -le "$previous" ]; then
            problems+=("$phase: a new lock got token '${token2}', not above $previous: $(tr '\n' ' ' <"$work/lock2.err")")
        else
            previous=$token2
        fi
        say "$name: $phase: a lock taken after the jumps got token ${token2:-none}"
    done
    # Release the first lock; the next holder of the same lock gets a higher token.
    kill -TERM "$lock_pid" 2>/dev/null || true
    { wait "$lock_pid"; } 2>/dev/null || true
    token3=$("$kvctl" --endpoints "$endpoints" lock clock-lock --ttl 3 --timeout 20 -- sh -c 'echo $KVD_LOCK_TOKEN' 2>"$work/lock3.err") || token3=""
    if [ -z "$token3" ] || [ "$token3" -le "$previous" ] || [ "$token3" -le "${token1:-0}" ]; then
        problems+=("after release: clock-lock's next token '${token3}' is not above ${token1:-?} and $previous")
    fi
    say "$name: clock-lock released; its next holder got token ${token3:-none} (first holder: ${token1:-none})"
    stop_writer
    detail="tokens $token1 -> ${token2:-?} -> ${token3:-?}"
    local ok=1
    if alive 1 && wait_caught_up 1 30000; then
        detail="$detail; node 1 kept working through +3h/-3h jumps as follower and as leader"
    else
        problems+=("node 1 under faketime is not running or not caught up: $(tail -n 2 "$work/node1.log" | tr '\n' ' ')")
    fi
    local crash
    crash=$(crash_signs "$work/node1.log")
    [ -z "$crash" ] || problems+=("node 1 log: $crash")
    if ((${#problems[@]})); then ok=0; detail="$detail; PROBLEMS: ${problems[*]}"; fi
    [ -z "$session_note" ] || detail="$detail; $session_note"
    final_check || ok=0
    check_acked --node 1 --readonly || { ok=0; detail="$detail; node 1's copy: $(tr '\n' ' ' <"$work/check.out")"; }
    stop_cluster
    if ((ok)); then record PASS "$name" "$detail"; else record FAIL "$name" "$detail"; fi
}

# ---------------------------------------------------------------------------------------------

say "kvd $kvd; work in $root; sub-tests: $only"
IFS=, read -r -a chosen <<<"$only"
for test in "${chosen[@]}"; do
    case "$test" in
        full-disk) test_full_disk follower; test_full_disk leader ;;
        fsync) test_fsync follower; test_fsync leader; test_fsync follower state.sqlite ;;
        clock) test_clock ;;
        *) echo "disk-faults.sh: unknown sub-test '$test' (full-disk, fsync, clock)" >&2; exit 2 ;;
    esac
done

echo
echo "Summary (kvd: $kvd)"
failed=0
for line in "${results[@]}"; do
    echo "  $line"
    case "$line" in FAIL*) failed=1 ;; esac
done
grep -q '^SKIP' < <(printf '%s\n' "${results[@]}") && echo "  SOME SUB-TESTS WERE SKIPPED: see the SKIP lines above"
echo "reproduce: DISK_FAULTS_ONLY=$only${KVD_SKIP_BUILD:+ KVD_SKIP_BUILD=1}${KVD_BIN_DIR:+ KVD_BIN_DIR=$KVD_BIN_DIR} scripts/disk-faults.sh"
exit "$failed"
