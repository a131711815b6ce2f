#!/usr/bin/env bash
# Runs the network fault harness (docs/FAULTS.md): a kvd cluster in network namespaces under a
# seeded schedule of partitions, one-way loss, kill -9 and SIGSTOP, with register, fenced-lock
# and exactly-once session workloads checked for safety, and a negative control that must be
# caught. Installs what a fresh Debian machine lacks (iproute2, nftables), builds release kvd,
# kvctl and kvd-faults, then runs kvd-faults with the arguments given.
#
#   scripts/faults.sh --short                      # the CI run: about 3 minutes after the build
#   scripts/faults.sh --minutes 15 --seed 42       # a long run; the seed replays its schedule
#   scripts/faults.sh --bin-dir /path/to/bin ...   # use kvd from there (only kvd-faults is built)
#
# Needs root and network namespaces. Without them it prints "skipped: needs root and network
# namespaces" and exits 0 if KVD_FAULTS_OPTIONAL=1, else 1.
# Exit status: that of kvd-faults (0 pass, 1 a safety verdict failed, 2 setup failed).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "faults: skipped: needs root and network namespaces ($1)"
    if [ "${KVD_FAULTS_OPTIONAL:-0}" = 1 ]; then exit 0; fi
    echo "faults: set KVD_FAULTS_OPTIONAL=1 to let this pass where the harness cannot run" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || skip "not root"

bin_dir=""
summary_given=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --bin-dir) bin_dir="${args[$((i + 1))]:-}" ;;
        --bin-dir=*) bin_dir="${args[$i]#--bin-dir=}" ;;
        --summary | --summary=*) summary_given=1 ;;
    esac
done

# Packages: the build's (scripts/install-deps.sh) and the harness's (ip, and nft or iptables).
scripts/install-deps.sh
missing=()
dpkg -s iproute2 >/dev/null 2>&1 || missing+=(iproute2)
if ! dpkg -s nftables >/dev/null 2>&1 && ! dpkg -s iptables >/dev/null 2>&1; then missing+=(nftables); fi
if ((${#missing[@]})); then
    echo "faults: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi

probe="kvdf-probe-$$"
if ! out=$(ip netns add "$probe" 2>&1); then skip "ip netns add: $out"; fi
ip netns del "$probe"

if [ -z "$bin_dir" ]; then
    swift build -c release --product kvd
    swift build -c release --product kvctl
fi
swift build -c release --product kvd-faults
harness=.build/release/kvd-faults

# A run killed with SIGKILL leaves namespaces behind; the next run removes them, and so does this.
trap '"$harness" --cleanup-only >/dev/null 2>&1 || true' EXIT

extra=()
if [ "$summary_given" = 0 ]; then
    mkdir -p run/faults
    extra+=(--summary run/faults/summary.json)
fi
set +e
"$harness" "${extra[@]}" "$@"
status=$?
set -e
if [ "$status" -eq 77 ]; then skip "kvd-faults could not create network namespaces"; fi
exit "$status"
