#!/usr/bin/env python3
"""Closed-loop load generator for etcd v3 (used by scripts/speed-report.sh).

It speaks gRPC with raw unary-unary calls to /etcdserverpb.KV/Put and /etcdserverpb.KV/Range;
the few protobuf messages it needs are encoded (and the one it reads decoded) by hand, so the
only dependency is grpcio. Workloads:

  put      Put of a 100-byte value (--value-bytes) to a key drawn uniformly over --keys
  get      linearizable Range of one key (serializable=false, etcd's default)
  preload  write every key once (Txn of up to 128 Puts each), unmeasured
  leader   print the endpoint of the member that is the leader (Maintenance/Status)

Keys are --key-prefix followed by the decimal index, as `kvctl bench` makes them, so both
tools touch the same key set. put and get run --clients concurrent clients (asyncio
coroutines, each with one request in flight) spread over --processes processes, each with its
own event loop and --conns-per-process HTTP/2 connections: warm-up, then a measured window.
The JSON on stdout follows `kvctl bench --json` (plan, runs[0] with throughput, latency_ms,
failures) plus "generator": the CPU the generator's processes used in the window.

On stderr the parent prints "etcd-load: measuring" when the window opens and
"etcd-load: measured" when it closes, so a caller can sample the servers at those instants.
"""
import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import sys
import time

TXN_OPS_MAX = 128  # etcd's default --max-txn-ops
INDETERMINATE = {"DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED", "UNKNOWN", "INTERNAL"}


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def put_request(key, value):
    return field_bytes(1, key) + field_bytes(2, value)  # PutRequest{key, value}


def range_request(key):
    return field_bytes(1, key)  # RangeRequest{key}; serializable (field 7) stays false


def txn_of_puts(pairs):
    # TxnRequest{success: [RequestOp{request_put: PutRequest}]}, no compare: always succeeds.
    return b"".join(field_bytes(2, field_bytes(2, put_request(k, v))) for k, v in pairs)


def decode(message):
    """Protobuf fields as {number: [value, ...]} (varints as ints, the rest as bytes)."""
    fields, i = {}, 0
    while i < len(message):
        tag, i = read_varint(message, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = read_varint(message, i)
        elif wire == 2:
            size, i = read_varint(message, i)
            value, i = message[i:i + size], i + size
        elif wire == 1:
            value, i = message[i:i + 8], i + 8
        elif wire == 5:
            value, i = message[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire} not handled")
        fields.setdefault(number, []).append(value)
    return fields


def read_varint(data, i):
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def key_bytes(prefix, index):
    return prefix + str(index).encode()


def value_bytes(size, seed):
    rng = random.Random(seed)
    return bytes(ord("a") + rng.randrange(26) for _ in range(size))


def channel(grpc_aio, endpoint):
    # A local subchannel pool gives each channel its own TCP connection.
    return grpc_aio.insecure_channel(endpoint, options=[("grpc.use_local_subchannel_pool", 1)])


def percentile(samples, p):
    if not samples:
        return 0.0
    rank = math.ceil(p / 100 * len(samples)) - 1  # nearest rank
    return samples[min(len(samples) - 1, max(0, rank))]


# --- workers -------------------------------------------------------------------------------


def worker_main(args, index, clients, pipe):
    """One process: its share of the clients on its own event loop."""
    try:
        result = asyncio.run(worker(args, index, clients, pipe))
    except Exception as error:  # reported to the parent instead of a silent hang
        result = {"fatal": f"{type(error).__name__}: {error}"}
    pipe.send(result)
    pipe.close()


async def worker(args, index, clients, pipe):
    import grpc
    from grpc import aio

    prefix, keys = args.key_prefix.encode(), args.keys
    if args.workload == "put":
        value = value_bytes(args.value_bytes, args.seed)
        requests = [put_request(key_bytes(prefix, i), value) for i in range(keys)]
        method = "/etcdserverpb.KV/Put"
    else:
        requests = [range_request(key_bytes(prefix, i)) for i in range(keys)]
        method = "/etcdserverpb.KV/Range"
    channels = [channel(aio, args.endpoint) for _ in range(args.conns_per_process)]
    for ch in channels:
        await asyncio.wait_for(ch.channel_ready(), args.connect_timeout)
    calls = [ch.unary_unary(method) for ch in channels]  # no serializers: bytes in, bytes out

    loop = asyncio.get_running_loop()
    pipe.send("ready")
    start = await loop.run_in_executor(None, pipe.recv)  # time.monotonic() at which load begins
    measure_from = start + args.warmup
    measure_until = measure_from + args.duration
    seconds = max(1, int(args.duration + 0.999))
    latencies, failures, per_second = [], {}, [0] * seconds
    cpu = {}

    async def client(number):
        rng = random.Random(f"{args.seed}:{index}:{number}")
        call = calls[number % len(calls)]
        now = time.monotonic()
        while now < measure_until:
            request = requests[rng.randrange(keys)]
            began = time.perf_counter_ns()
            try:
                await call(request, timeout=args.timeout)
                failed = None
            except grpc.aio.AioRpcError as error:
                failed = error.code().name
            elapsed = time.perf_counter_ns() - began
            now = time.monotonic()
            if measure_from <= now < measure_until:
                if failed is None:
                    latencies.append(elapsed)
                    per_second[min(seconds - 1, int(now - measure_from))] += 1
                else:
                    failures[failed] = failures.get(failed, 0) + 1
            if failed is not None:
                await asyncio.sleep(0.01)  # no busy loop against a server that refuses

    async def cpu_window():
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu["from"] = time.process_time()
        await asyncio.sleep(max(0.0, measure_until - time.monotonic()))
        cpu["until"] = time.process_time()

    await asyncio.sleep(max(0.0, start - time.monotonic()))
    await asyncio.gather(cpu_window(), *(client(n) for n in range(clients)))
    for ch in channels:
        await ch.close()
    return {
        "latencies_ns": latencies,
        "failures": failures,
        "per_second": per_second,
        "cpu_s": cpu.get("until", 0.0) - cpu.get("from", 0.0),
    }


def run_load(args):
    ctx = multiprocessing.get_context("spawn")  # nothing of grpc is initialised in the parent
    processes = max(1, min(args.processes, args.clients))
    shares = [args.clients // processes + (1 if i < args.clients % processes else 0) for i in range(processes)]
    pipes, children = [], []
    for index, share in enumerate(shares):
        parent_end, child_end = ctx.Pipe()
        child = ctx.Process(target=worker_main, args=(args, index, share, child_end), daemon=True)
        child.start()
        pipes.append(parent_end)
        children.append(child)
    for pipe in pipes:
        message = pipe.recv()
        if message != "ready":
            sys.exit(f"etcd-load: a worker failed before the load began: {message.get('fatal', message)}")
    start = time.monotonic() + 0.05
    for pipe in pipes:
        pipe.send(start)
    measure_from = start + args.warmup
    time.sleep(max(0.0, measure_from - time.monotonic()))
    print("etcd-load: measuring", file=sys.stderr, flush=True)
    time.sleep(max(0.0, measure_from + args.duration - time.monotonic()))
    print("etcd-load: measured", file=sys.stderr, flush=True)
    results = [pipe.recv() for pipe in pipes]
    for child in children:
        child.join()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        sys.exit(f"etcd-load: {fatal[0]}")

    latencies = sorted(ns for r in results for ns in r["latencies_ns"])
    failures = {}
    for r in results:
        for kind, count in r["failures"].items():
            failures[kind] = failures.get(kind, 0) + count
    per_second = [sum(column) for column in zip(*(r["per_second"] for r in results))]
    succeeded = len(latencies)
    cpu_s = sum(r["cpu_s"] for r in results)
    ms = [x / 1e6 for x in latencies]
    latency = {name: percentile(ms, p) for name, p in
               (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))}
    latency["max"] = ms[-1] if ms else 0.0
    latency["mean"] = sum(ms) / len(ms) if ms else 0.0
    definite = sum(c for k, c in failures.items() if k not in INDETERMINATE)
    report = {
        "workload": args.workload,
        "target": args.endpoint,
        "label": args.label or args.endpoint,
        "plan": {
            "clients": [args.clients], "pacing": "closed", "pipeline": 1,
            "duration_s": args.duration, "warmup_s": args.warmup, "keys": args.keys,
            "distribution": "uniform", "seed": str(args.seed), "value_bytes": args.value_bytes,
            "key_prefix": args.key_prefix, "linearizable": args.workload == "get",
        },
        "runs": [{
            "clients": args.clients,
            "seconds": args.duration,
            "succeeded": succeeded,
            "throughput": succeeded / args.duration,
            "latency_ms": latency,
            "throughput_per_second": per_second,
            "failed_definite": definite,
            "failed_indeterminate": sum(failures.values()) - definite,
            "failures": [{"kind": k, "indeterminate": k in INDETERMINATE, "count": c}
                         for k, c in sorted(failures.items())],
        }],
        "generator": {
            "processes": processes,
            "connections": processes * args.conns_per_process,
            "cpu_s": cpu_s,
            "cores": cpu_s / args.duration,
            "cpu_us_per_op": cpu_s * 1e6 / succeeded if succeeded else None,
            "grpcio": __import__("grpc").__version__,
        },
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    if args.quiet:
        return
    print(f"etcd-load: {args.workload} {args.clients} clients: {succeeded} ok in {args.duration:g} s = "
          f"{succeeded / args.duration:.1f} req/s, p50 {latency['p50']:.3f} ms, p99 {latency['p99']:.3f} ms, "
          f"failed {sum(failures.values())}, generator {cpu_s / args.duration:.2f} cores", file=sys.stderr)


# --- preload and leader --------------------------------------------------------------------


async def preload(args):
    from grpc import aio

    prefix = args.key_prefix.encode()
    value = value_bytes(args.value_bytes, args.seed)
    batches = [txn_of_puts((key_bytes(prefix, i), value) for i in range(lo, min(lo + TXN_OPS_MAX, args.keys)))
               for lo in range(0, args.keys, TXN_OPS_MAX)]
    async with channel(aio, args.endpoint) as ch:
        txn = ch.unary_unary("/etcdserverpb.KV/Txn")
        pending = iter(batches)

        async def writer():
            for batch in pending:
                await txn(batch, timeout=30)

        await asyncio.gather(*(writer() for _ in range(8)))
    print(f"etcd-load: preloaded {args.keys} keys in {len(batches)} transactions", file=sys.stderr)


async def leader(args):
    """The endpoint (of --endpoints) whose member id is the leader id that member reports."""
    from grpc import aio

    for endpoint in args.endpoint.split(","):
        try:
            async with channel(aio, endpoint) as ch:
                status = decode(await ch.unary_unary("/etcdserverpb.Maintenance/Status")(b"", timeout=2))
        except Exception:
            continue
        header = decode(status.get(1, [b""])[0])
        member, lead = header.get(2, [0])[0], status.get(4, [0])[0]
        if lead and member == lead:
            print(endpoint)
            return
    sys.exit("etcd-load: no leader among " + args.endpoint)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["put", "get", "preload", "leader"])
    parser.add_argument("--endpoint", required=True, help="host:port (leader: a comma-separated list)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="load processes (default 2)")
    parser.add_argument("--conns-per-process", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--key-prefix", default="bench:")
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    parser.add_argument("--label", default="")
    parser.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    args = parser.parse_args()
    if args.workload == "preload":
        asyncio.run(preload(args))
    elif args.workload == "leader":
        asyncio.run(leader(args))
    else:
        if args.clients < 1 or args.duration <= 0 or args.warmup < 0 or args.keys < 1:
            parser.error("--clients and --keys must be at least 1, --duration positive, --warmup not negative")
        run_load(args)


if __name__ == "__main__":
    main()
