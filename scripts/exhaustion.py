#!/usr/bin/env python3
"""Resource exhaustion against one kvd node: each attack runs while another connection sends PING
every 10 ms; the script reports the PING p50/p99/max during the attack, the node's resident memory
before, at its peak and after, and what the node did to the attacker. It measures; it asserts only
that the node is still alive and answering at the end of each attack (exit 1 otherwise).

Run through scripts/exhaustion.sh, which builds kvd and starts the node (docs/SECURITY.md,
"Resource exhaustion").
"""
import argparse
import asyncio
import json
import os
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def resp(*words):
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word if isinstance(word, bytes) else str(word).encode()
        out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(out)


async def read_reply(reader):
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed")
    kind = line[:1]
    if kind in (b"+", b"-", b":"):
        return line[:-2].decode(errors="replace")
    if kind == b"$":
        length = int(line[1:-2])
        if length < 0:
            return None
        data = await reader.readexactly(length + 2)
        return data[:-2]
    if kind == b"*":
        count = int(line[1:-2])
        return [await read_reply(reader) for _ in range(max(count, 0))]
    raise ValueError(f"unexpected reply {line!r}")


class Pinger:
    """PING every 10 ms on its own connection; latencies in ms; failures counted."""

    def __init__(self, port):
        self.port = port
        self.latencies = []
        self.failures = 0
        self.running = True

    async def run(self):
        reader = writer = None
        while self.running:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                start = time.perf_counter()
                writer.write(b"PING\r\n")
                await writer.drain()
                reply = await asyncio.wait_for(read_reply(reader), 5)
                if reply != "+PONG":
                    raise ValueError(reply)
                self.latencies.append((time.perf_counter() - start) * 1000)
            except Exception:
                self.failures += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
            await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    def summary(self):
        values = sorted(self.latencies)
        if not values:
            return {"pings": 0, "failures": self.failures}
        pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 2)
        return {"pings": len(values), "failures": self.failures, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(values[-1], 2)}


class Memory:
    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.running = True

    async def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            await asyncio.sleep(0.1)


async def alive(port):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(b"PING\r\n")
    await writer.drain()
    reply = await asyncio.wait_for(read_reply(reader), 5)
    writer.close()
    return reply == "+PONG"


# Attacks: each returns a dict describing what the node did.

async def idle_connections(port, count):
    """`count` connections that connect and send nothing."""
    writers, refused, errors = [], 0, 0
    for _ in range(count):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append((reader, writer))
        except OSError:
            errors += 1
    await asyncio.sleep(2)
    # Over client-connections-max, kvd answers -ERR max number of clients reached and closes.
    for reader, writer in writers:
        try:
            data = await asyncio.wait_for(reader.read(100), 0.001)
            if b"max number of clients" in data:
                refused += 1
        except (asyncio.TimeoutError, ConnectionError):
            pass
    await asyncio.sleep(3)
    for _, writer in writers:
        writer.close()
    return {"opened": len(writers), "told_max_clients": refused, "connect_errors": errors}


async def slowloris(port, count, seconds):
    """`count` clients sending a request one byte per second."""
    request = resp("SET", "slow-key", "x" * 64)
    closed_by_node, replies = 0, []

    async def one():
        nonlocal closed_by_node
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in range(seconds):
                writer.write(request[index % len(request):index % len(request) + 1])
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(200), 1)
                    if data:
                        replies.append(data)
                    if data == b"" or b"not completed" in data:
                        closed_by_node += 1
                        return
                except asyncio.TimeoutError:
                    pass
        except ConnectionError:
            closed_by_node += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    sample = next((r.decode(errors="replace").strip() for r in replies if r), "")
    return {"clients": count, "closed_by_node": closed_by_node, "reply": sample[:100]}


async def huge_multibulk(port):
    """A request header announcing 2^31 arguments, then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"*2147483648\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(200), 5)
    closed = (await asyncio.wait_for(reader.read(1), 5)) == b""
    writer.close()
    return {"reply": data.decode(errors="replace").strip(), "closed": closed}


async def never_reads(port, seconds, value_kib):
    """A client pipelining GETs of a large value for `seconds` without reading any reply."""
    setup_reader, setup_writer = await asyncio.open_connection("127.0.0.1", port)
    setup_writer.write(resp("SET", "big-value", b"v" * (value_kib * 1024)))
    await setup_writer.drain()
    await read_reply(setup_reader)
    setup_writer.close()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    request = resp("GET", "big-value") * 64
    sent, deadline, closed = 0, time.monotonic() + seconds, False
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        try:
            sent += sock.send(request)
        except BlockingIOError:
            await asyncio.sleep(0.05)
        except OSError:
            closed = True
            break
        await asyncio.sleep(0)
    sock.close()
    return {"request_bytes_sent": sent, "closed_by_node": closed}


async def huge_replies(port, keys):
    """One MGET naming a 1 MiB value `keys` times (a reply of `keys` MiB if built), then a LIST of
    100 such values under one prefix, inside the request limit."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    value = b"v" * (1 << 20)
    for i in range(100):
        writer.write(resp("SET", f"huge:{i:03}", value))
    await writer.drain()
    for _ in range(100):
        await read_reply(reader)
    writer.write(resp("MGET", *(["huge:000"] * keys)))
    writer.write(resp("LIST", "huge:", "LIMIT", "100"))
    await writer.drain()
    mget = await asyncio.wait_for(read_reply(reader), 60)
    listing = await asyncio.wait_for(read_reply(reader), 60)
    writer.close()
    return {"mget_keys": keys, "mget": str(mget)[:120], "list": str(listing)[:120]}


async def lease_flood(port, leases, connections):
    """`leases` LEASE GRANT requests, pipelined on `connections` connections."""
    granted, refused, sample = 0, 0, ""

    async def one(count):
        nonlocal granted, refused, sample
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ids = []
        for start in range(0, count, 500):
            batch = min(500, count - start)
            writer.write(resp("LEASE", "GRANT", "600") * batch)
            await writer.drain()
            for _ in range(batch):
                reply = await read_reply(reader)
                if isinstance(reply, str) and reply.startswith(":"):
                    granted += 1
                    ids.append(int(reply[1:]))
                else:
                    refused += 1
                    sample = sample or str(reply)
        writer.close()
        return ids

    per = leases // connections
    results = await asyncio.gather(*(one(per) for _ in range(connections)))
    return {"granted": granted, "refused": refused, "refusal": sample[:100]}, [i for ids in results for i in ids]


async def lock_waiters(port, lease_ids, locks, connections):
    """One LOCK ... WAIT per lease, spread over `locks` locks: all but one per lock queue up."""
    queued, answered, refused, sample = 0, 0, 0, ""
    chunks = [lease_ids[i::connections] for i in range(connections)]

    async def one(ids):
        nonlocal queued, answered, refused, sample
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for index, lease in enumerate(ids):
            writer.write(resp("LOCK", f"waiters-{(lease + index) % locks}", "LEASE", lease, "WAIT", "20000"))
        await writer.drain()
        queued += len(ids)
        try:
            while answered + refused < queued:
                reply = await asyncio.wait_for(read_reply(reader), 30)
                if isinstance(reply, str) and reply.startswith("-") and "TIMEOUT" not in reply:
                    refused += 1
                    sample = sample or reply
                else:
                    answered += 1
        except (asyncio.TimeoutError, ConnectionError):
            pass
        writer.close()

    await asyncio.gather(*(one(ids) for ids in chunks if ids))
    return {"requests": queued, "answered_or_timed_out": answered, "refused": refused, "refusal": sample[:100]}


async def measure(name, port, pid, attack):
    pinger, memory = Pinger(port), Memory(pid)
    before = rss_kib(pid)
    tasks = [asyncio.create_task(pinger.run()), asyncio.create_task(memory.run())]
    started = time.monotonic()
    result = await attack
    if isinstance(result, tuple):
        result, extra = result
    else:
        extra = None
    elapsed = time.monotonic() - started
    await asyncio.sleep(1)
    pinger.running = memory.running = False
    await asyncio.gather(*tasks)
    ok = await alive(port)
    row = {"attack": name, "seconds": round(elapsed, 1), "alive_after": ok, "ping": pinger.summary(),
           "rss_mib": {"before": round(before / 1024, 1), "peak": round(memory.peak / 1024, 1), "after": round(rss_kib(pid) / 1024, 1)},
           "node": result}
    print(json.dumps(row), flush=True)
    return row, extra


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--short", action="store_true")
    args = parser.parse_args()
    scale = 10 if args.short else 1
    rows = []
    rows.append((await measure("baseline (no attack)", args.port, args.pid, asyncio.sleep(3)))[0])
    rows.append((await measure("10,000 idle connections", args.port, args.pid, idle_connections(args.port, 10_000 // scale)))[0])
    rows.append((await measure("slowloris: 500 clients, a byte per second", args.port, args.pid,
                               slowloris(args.port, 500 // scale, 40 if not args.short else 5)))[0])
    rows.append((await measure("multibulk header of 2^31 arguments", args.port, args.pid, huge_multibulk(args.port)))[0])
    rows.append((await measure("a client that never reads (GET of 512 KiB, pipelined)", args.port, args.pid,
                               never_reads(args.port, 20 // (scale // 5 or 1), 512)))[0])
    rows.append((await measure("huge replies: MGET of a 1 MiB value x 200,000, LIST of 100 MiB", args.port, args.pid,
                               huge_replies(args.port, 200_000 // scale)))[0])
    row, lease_ids = await measure("lease grant flood: 100,000 LEASE GRANT", args.port, args.pid,
                                   lease_flood(args.port, 100_000 // scale, 20))
    rows.append(row)
    rows.append((await measure("100,000 queued lock waiters (100 locks)", args.port, args.pid,
                               lock_waiters(args.port, lease_ids, 100, 100)))[0])
    failed = [row["attack"] for row in rows if not row["alive_after"]]
    print()
    print(f"{'attack':58} {'ping p50/p99/max ms':>22} {'fails':>5} {'rss MiB before/peak/after':>26}")
    for row in rows:
        ping, rss = row["ping"], row["rss_mib"]
        latency = f"{ping.get('p50_ms', '-')}/{ping.get('p99_ms', '-')}/{ping.get('max_ms', '-')}"
        print(f"{row['attack']:58} {latency:>22} {ping['failures']:>5} {rss['before']:>8}/{rss['peak']}/{rss['after']}")
    if failed:
        print(f"FAIL: the node stopped answering after: {', '.join(failed)}")
        sys.exit(1)
    print("the node answered PING after every attack")


if __name__ == "__main__":
    asyncio.run(main())
