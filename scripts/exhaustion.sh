#!/usr/bin/env bash
# Resource exhaustion against one kvd node (docs/SECURITY.md, "Resource exhaustion"): 10,000 idle
# connections, slowloris clients, a 2^31-argument header, a client that never reads, a flood of
# lease grants and 100,000 queued lock waiters. During each, another connection PINGs every 10 ms;
# the script prints PING p50/p99/max, the node's memory before/peak/after and what the node did,
# one JSON line per attack and a table. It fails only if the node stops answering.
#
#   scripts/exhaustion.sh            # the full run, about 3 minutes after the build
#   scripts/exhaustion.sh --short    # a tenth of each attack
#   KVD_SKIP_BUILD=1 scripts/exhaustion.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${KVD_SKIP_BUILD:-0}" != 1 ]; then swift build -c release --product kvd >/dev/null; fi
command -v python3 >/dev/null || { echo "exhaustion: needs python3" >&2; exit 1; }
# The attacker opens 10,000 sockets; kvd itself refuses connections past client-connections-max.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/kvd-exhaustion-XXXXXX)
port=$((20000 + RANDOM % 20000))
cat >"$work/node.conf" <<CONF
# One node with kvd's default limits (docs/CONFIGURATION.md).
cluster-id exhaustion
node 1 peer=127.0.0.1:$((port + 1)) client=127.0.0.1:$port
CONF
.build/release/kvd --config "$work/node.conf" --id 1 --data-dir "$work/data" --log-level warning 2>"$work/kvd.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
    sleep 0.1
done
echo "exhaustion: kvd pid $pid on 127.0.0.1:$port, default limits; log $work/kvd.log"
python3 scripts/exhaustion.py --port "$port" --pid "$pid" "$@"
