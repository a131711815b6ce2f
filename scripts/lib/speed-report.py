#!/usr/bin/env python3
"""Measurement and summary helpers of scripts/speed-report.sh (standard library only).

  speed-report.py measure --target T --shape S --servers PID,... --format kvctl|etcd|redis-benchmark
                          --raw FILE --out FILE [--warmup W --seconds S] [--requests N] -- COMMAND...
      Runs COMMAND (a load generator; its stdout goes to --raw) and samples, at the start and the
      end of its measured window, the CPU time (utime + stime of /proc/PID/stat) and the context
      switches (voluntary + nonvoluntary of /proc/PID/task/*/status) of the server processes, and
      the CPU time of the generator's process tree. The window is
        kvctl            W seconds after the launch, for S seconds (kvctl bench's own window)
        etcd             between the "etcd-load: measuring" and "etcd-load: measured" lines
        redis-benchmark  the whole process (a run of N requests after a separate warm-up)
      Writes one record (--out): throughput, p50/p99 latency, server CPU and context switches per
      operation, generator CPU.

  speed-report.py summary OUT-DIR
      Medians over OUT-DIR/run-*/*.speed.json, as markdown on stdout.
"""
import glob
import json
import os
import statistics
import subprocess
import sys
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process (all its threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)


def context_switches(pid):
    """(voluntary, nonvoluntary) summed over the live threads of a process."""
    voluntary = nonvoluntary = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        nonvoluntary += int(line.split()[1])
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return voluntary, nonvoluntary


def descendants(pid):
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for children in glob.glob(f"/proc/{current}/task/*/children"):
            try:
                with open(children) as f:
                    stack.extend(int(c) for c in f.read().split())
            except FileNotFoundError:
                pass
    return found


def tree_cpu_seconds(pid):
    total = 0.0
    for member in descendants(pid):
        try:
            total += cpu_seconds(member)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def sample(servers, generator=None):
    cpu = voluntary = nonvoluntary = 0
    for pid in servers:
        cpu += cpu_seconds(pid)
        v, n = context_switches(pid)
        voluntary += v
        nonvoluntary += n
    return {
        "at": time.monotonic(),
        "server_cpu_s": cpu,
        "voluntary": voluntary,
        "nonvoluntary": nonvoluntary,
        "generator_cpu_s": tree_cpu_seconds(generator) if generator else 0.0,
    }


def measure(argv):
    import argparse

    parser = argparse.ArgumentParser(prog="speed-report.py measure")
    parser.add_argument("--target", required=True)
    parser.add_argument("--shape", required=True)
    parser.add_argument("--servers", required=True)
    parser.add_argument("--format", required=True, choices=["kvctl", "etcd", "redis-benchmark"])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=0, help="redis-benchmark: its -n")
    parser.add_argument("--timeout", type=float, default=0, help="seconds before the command is killed")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    servers = [int(p) for p in args.servers.split(",") if p]
    limit = args.timeout or (args.warmup + args.seconds + 120)

    marks = {}
    with open(args.raw, "wb") as raw:
        if args.format == "redis-benchmark":
            marks["from"] = sample(servers)
            stderr_file = open(args.raw + ".stderr", "wb")  # e.g. its warning that kvd has no CONFIG GET
            child = subprocess.Popen(args.command, stdout=raw, stderr=stderr_file)
            deadline = time.monotonic() + limit
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    child.kill()
                    pid, status, usage = os.wait4(child.pid, 0)
                    break
                time.sleep(0.005)
            child.returncode = os.waitstatus_to_exitcode(status)
            marks["until"] = sample(servers)
            generator_cpu = usage.ru_utime + usage.ru_stime
            stderr_file.close()
        else:
            child = subprocess.Popen(args.command, stdout=raw, stderr=subprocess.PIPE)
            timer = threading.Timer(limit, child.kill)
            timer.start()
            if args.format == "kvctl":
                passer = threading.Thread(target=pass_stderr, args=(child, None, None), daemon=True)
                passer.start()
                launched = time.monotonic()
                for name, at in (("from", launched + args.warmup), ("until", launched + args.warmup + args.seconds)):
                    time.sleep(max(0.0, at - time.monotonic()))
                    if child.poll() is None:
                        marks[name] = sample(servers, child.pid)
            else:
                pass_stderr(child, servers, marks)
            child.wait()
            timer.cancel()
            generator_cpu = None  # from the samples

    if child.returncode != 0:
        if args.format == "redis-benchmark":
            with open(args.raw + ".stderr", errors="replace") as f:
                sys.stderr.write(f.read())
        sys.exit(f"speed-report.py: {args.target} {args.shape}: the load generator exited with {child.returncode}")
    if "from" not in marks or "until" not in marks:
        sys.exit(f"speed-report.py: {args.target} {args.shape}: the measured window was not seen")
    record = summarise(args, marks, generator_cpu)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"  {args.target:5} {args.shape:8} {record['throughput']:9.0f} ops/s  p50 {record['p50_ms']:7.3f} ms  "
          f"p99 {record['p99_ms']:7.3f} ms  server {record['server_cpu_us_per_op']:6.1f} us/op "
          f"{record['ctx_switches_per_op']:5.2f} cs/op  generator {record['generator_cores']:.2f} cores  "
          f"errors {record['errors']}", flush=True)


def pass_stderr(child, servers, marks):
    """Copy the child's stderr to ours; with servers, sample them at the etcd-load window lines."""
    for line in iter(child.stderr.readline, b""):
        text = line.decode(errors="replace").strip()
        if servers is not None and text == "etcd-load: measuring":
            marks["from"] = sample(servers, child.pid)
        elif servers is not None and text == "etcd-load: measured":
            marks["until"] = sample(servers, child.pid)
        else:
            sys.stderr.write(line.decode(errors="replace"))
            sys.stderr.flush()


def parse_redis_benchmark(path):
    """The SET row of `redis-benchmark --csv` (rps, avg/min/p50/p95/p99/max latency in ms)."""
    rows = []
    with open(path) as f:
        for line in f:
            cells = [c.strip().strip('"') for c in line.strip().split(",")]
            if len(cells) > 1:
                rows.append(cells)
    header, body = rows[0], [r for r in rows[1:] if r[0] != rows[0][0]]
    return {name: (float(value) if name != "test" else value) for name, value in zip(header, body[0])}


def summarise(args, marks, generator_cpu):
    before, after = marks["from"], marks["until"]
    window = after["at"] - before["at"]
    if args.format == "redis-benchmark":
        row = parse_redis_benchmark(args.raw)
        with open(args.raw + ".json", "w") as f:
            json.dump({"command": args.command, "requests": args.requests, "csv": row}, f, indent=1)
        throughput, p50, p99 = row["rps"], row["p50_latency_ms"], row["p99_latency_ms"]
        ops, errors = args.requests, 0
    else:
        with open(args.raw) as f:
            run = json.load(f)["runs"][0]
        throughput = run["throughput"]
        p50, p99 = run["latency_ms"]["p50"], run["latency_ms"]["p99"]
        ops = throughput * window  # operations done while the servers were sampled
        errors = run["failed_definite"] + run["failed_indeterminate"]
        generator_cpu = after["generator_cpu_s"] - before["generator_cpu_s"]
    server_cpu = after["server_cpu_s"] - before["server_cpu_s"]
    switches = (after["voluntary"] + after["nonvoluntary"]) - (before["voluntary"] + before["nonvoluntary"])
    per_op = (lambda x: x / ops) if ops else (lambda x: None)
    return {
        "target": args.target,
        "shape": args.shape,
        "window_s": window,
        "throughput": throughput,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "server_cpu_s": server_cpu,
        "server_cores": server_cpu / window if window else None,
        "server_cpu_us_per_op": per_op(server_cpu * 1e6),
        "ctx_switches": switches,
        "ctx_voluntary": after["voluntary"] - before["voluntary"],
        "ctx_nonvoluntary": after["nonvoluntary"] - before["nonvoluntary"],
        "ctx_switches_per_op": per_op(switches),
        "generator_cpu_s": generator_cpu,
        "generator_cores": generator_cpu / window if window else None,
        "generator_cpu_us_per_op": per_op(generator_cpu * 1e6),
        "command": args.command,
    }


# --- summary -------------------------------------------------------------------------------

SHAPES = [
    ("put-64", "put, 64 clients"),
    ("put-1", "put, 1 client"),
    ("get-64", "linearizable get, 64 clients (keys preloaded)"),
    ("put-P16", "pipelined put, 50 clients x 16 (redis-benchmark -P 16)"),
]
TARGETS = ["kvd", "etcd", "redis"]
COLUMNS = [  # (field, header, format)
    ("throughput", "ops/s", "{:.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("server_cpu_us_per_op", "server CPU µs/op", "{:.0f}"),
    ("ctx_switches_per_op", "ctx switches/op", "{:.2f}"),
    ("server_cores", "server cores", "{:.2f}"),
    ("generator_cpu_us_per_op", "generator CPU µs/op", "{:.0f}"),
    ("generator_cores", "generator cores", "{:.2f}"),
]


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(out):
    records = {}
    runs = sorted(glob.glob(os.path.join(out, "run-*")))
    for path in glob.glob(os.path.join(out, "run-*", "*.speed.json")):
        with open(path) as f:
            record = json.load(f)
        records.setdefault((record["shape"], record["target"]), []).append(record)
    settings = {}
    settings_path = os.path.join(out, "settings.json")
    if os.path.exists(settings_path):
        with open(settings_path) as f:
            settings = json.load(f)

    print("# kvd (3 nodes) vs etcd (3 members) vs redis-server (appendfsync always)\n")
    if settings:
        print(f"Medians of {len(runs)} run(s), targets interleaved (one shape at a time, the order of the "
              f"targets rotating from run to run); {settings.get('seconds')} s measured after "
              f"{settings.get('warmup')} s of warm-up. {settings.get('keys')} keys drawn uniformly, "
              f"{settings.get('value')}-byte values. Servers and load generators share the machine "
              f"({settings.get('cores')} cores; load average {settings.get('load_before')} before, "
              f"{settings.get('load_after')} after).\n")
        print(f"- kvd: {settings.get('kvd')}; load from `kvctl bench` against the leader")
        print(f"- etcd: {settings.get('etcd')}; load from scripts/lib/etcd-load.py (grpcio "
              f"{settings.get('grpcio')}, {settings.get('etcd_processes')} processes) against the leader")
        print(f"- redis: {settings.get('redis')}")
        print("- pipelined put: `redis-benchmark -r KEYS -d VALUE -t set -c 50 -P 16` on kvd's leader and redis\n")
    print("Server CPU and context switches are summed over the server processes (3 for kvd and etcd, "
          "1 for redis) between the start and the end of the measured window and divided by the "
          "operations done in it. Ratios are kvd/etcd and kvd/redis (for latency and CPU, below 1 "
          "means kvd is better; for ops/s, above 1).\n")
    for shape, title in SHAPES:
        present = [t for t in TARGETS if (shape, t) in records]
        if not present:
            continue
        print(f"## {title}\n")
        print("| target | " + " | ".join(h for _, h, _ in COLUMNS) + " | errors |")
        print("|---|" + "---:|" * (len(COLUMNS) + 1))
        medians = {}
        for target in present:
            rows = records[(shape, target)]
            medians[target] = {field: median_or_none([r[field] for r in rows]) for field, _, _ in COLUMNS}
            cells = [fmt.format(medians[target][field]) if medians[target][field] is not None else "-"
                     for field, _, fmt in COLUMNS]
            errors = sum(r["errors"] for r in rows)
            print(f"| {target} ({len(rows)} run{'s' if len(rows) != 1 else ''}) | " + " | ".join(cells) + f" | {errors} |")
        for other in ("etcd", "redis"):
            if "kvd" in medians and other in medians:
                cells = []
                for field, _, _ in COLUMNS:
                    a, b = medians["kvd"][field], medians[other][field]
                    cells.append(f"{a / b:.2f}" if a is not None and b else "-")
                print(f"| kvd/{other} | " + " | ".join(cells) + " | |")
        print()


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "measure":
        measure(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
