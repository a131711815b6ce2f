#!/usr/bin/env python3
"""Counts the results of Redis's Tcl test suite, one log per unit, for scripts/redis-suite.sh.

Each unit's log is the output of `./runtest --single UNIT` (colours off). The harness prints one
line per test: `[ok]: NAME (N ms)`, `[err]: NAME in tests/unit/FILE.tcl` followed by the detail
lines, `[skip]: NAME` (--skiptest/--only), `[ignore]: NAME: Tag: X denied` (a tag excluded with
--tags, or external:skip / singledb:skip); an `[ignore]` without a test name stands for a whole
start_server or tags block that was left out. `[exception]: ...` means the test client died
(an error outside a test, such as a failed FLUSHALL while setting up a block): the rest of the
unit did not run. `[TIMEOUT]` is the harness's own no-progress timeout; the wrapper's wall-clock
timeout leaves a status file with exit code 124.

Usage: redis-suite-report.py --out OUT-DIR --target DESCRIPTION [--tree TREE --probe-port PORT] UNIT...
Reads OUT-DIR/<slug>.log and OUT-DIR/<slug>.status ("rc seconds"), writes OUT-DIR/summary.md and
OUT-DIR/summary.json, and prints the markdown table.

With --tree and --probe-port it also lists, per unit, the Redis commands the unit's file calls
that the server under test answers "unknown command": the blockers an exception early in a
unit hides. Each command is sent once with no arguments (a known command then answers an arity
error and does nothing); commands that would act without arguments (SHUTDOWN, SAVE, MONITOR,
SYNC, ...) are not sent.
"""

import argparse
import json
import re
import socket
import sys
from collections import Counter
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS_LINE = re.compile(r"^\[(ok|err|skip|ignore|exception|TIMEOUT)\]: ?(.*)$")


def slug(unit: str) -> str:
    return unit.replace("/", "_")


def reason_of(message: str) -> str:
    """A short, groupable reason for one failure message."""
    m = message.strip()
    unknown = re.search(r"unknown command [`']([^`']*)[`']", m, re.I)
    if unknown:
        return f"unknown command {unknown.group(1).upper()}"
    subcommand = re.search(r"unknown subcommand [`']([^`']*)[`']", m, re.I)
    if subcommand:
        return f"unknown subcommand {subcommand.group(1).upper()}"
    if m.startswith("NOTLEADER"):
        return "NOTLEADER (this node does not take writes)"
    if re.search(r"DB index is out of range", m):
        return "SELECT of a database other than 0"
    if re.search(r"syntax error|wrong number of arguments", m, re.I):
        return "option or arity not accepted: " + m[:80]
    if re.search(r"I/O error|connection (reset|refused|closed)|broken pipe|EOF", m, re.I):
        return "connection error: " + m[:80]
    if m.startswith("Expected") or m.startswith("assertion"):
        return "assertion failed (reply differs from Redis's)"
    return m[:100] if m else "(no message)"


def parse(log_text: str) -> dict:
    lines = [ANSI.sub("", line.rstrip("\r\n")) for line in log_text.splitlines()]
    result = {"passed": 0, "failed": 0, "skipped": 0, "ignored": 0, "ignored_blocks": 0,
              "failures": [], "exception": None, "harness_timeout": False, "done": False}
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\[\d+/\d+ done\]:", line):
            result["done"] = True
        match = STATUS_LINE.match(line)
        if not match:
            i += 1
            continue
        status, data = match.groups()
        # Detail lines run until the next status line, "Testing ...", or "[n/m done]".
        j = i + 1
        details = []
        while j < len(lines) and not lines[j].startswith("[") and not lines[j].startswith("Testing "):
            details.append(lines[j])
            j += 1
        if status == "ok":
            result["passed"] += 1
        elif status == "skip":
            result["skipped"] += 1
        elif status == "ignore":
            # "NAME: Tag: x denied" is one test; "Tag: x denied" / "Not supported..." a block.
            if re.match(r"^(Tag: |Not supported|large memory)", data):
                result["ignored_blocks"] += 1
            else:
                result["ignored"] += 1
        elif status == "err":
            name = re.sub(r" in tests/\S+\.tcl$", "", data)
            message = next((d.strip() for d in details if d.strip()), "")
            result["failed"] += 1
            result["failures"].append({"test": name, "message": message[:300], "reason": reason_of(message)})
        elif status == "exception":
            message = data.replace("Executing test client: ", "", 1).rstrip(".")
            # Tcl's errorInfo says which command raised it: 'while executing "r flushall"'.
            # The innermost frame is the generic `r` proc; name the first "r ..." call instead,
            # and the procedure it was in (run_external_server_test: setting up a block).
            where = ""
            quoted = [(k, d.strip()) for k, d in enumerate(details) if d.strip().startswith('"')]
            for k, q in quoted:
                if re.match(r'^"r \S', q):
                    where = q.strip('"')
                    if k + 1 < len(details):
                        proc = re.search(r'\(procedure "([^"]+)"', details[k + 1])
                        if proc:
                            where += f" in {proc.group(1)}"
                    break
            if not where and quoted:
                where = quoted[0][1].strip('"')
            result["exception"] = {"message": message[:300], "while_executing": where[:120],
                                   "reason": reason_of(message)}
            i = j
            break
        elif status == "TIMEOUT":
            result["harness_timeout"] = True
        i = j
    return result


def outcome_of(rc: int, parsed: dict) -> str:
    if rc == 124 or rc == 137:
        return "timeout (wall clock)"
    if parsed["exception"]:
        return "exception"
    if parsed["harness_timeout"]:
        return "timeout (no progress)"
    if not parsed["done"]:
        return f"harness error (exit {rc})"
    return "completed" if parsed["failed"] == 0 else "completed with failures"


# Not sent by the probe: with no arguments these act (stop, persist, stream, block, fail over),
# and DEBUG is excluded by tag anyway.
NOT_PROBED = {"SHUTDOWN", "SAVE", "BGSAVE", "BGREWRITEAOF", "MONITOR", "SYNC", "PSYNC", "FAILOVER",
              "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "RESET", "DEBUG"}
# What the suite itself sends before every start_server block in external mode
# (run_external_server_test in tests/support/server.tcl): an error there ends the unit.
SETUP_COMMANDS = ["FLUSHALL", "FUNCTION"]
CALL = re.compile(r"(?:\br(?: -?\d+)?|\$r[a-z0-9_]*|\bR \d+|\[Rn \d+\]|\$\w+) ([a-zA-Z][a-zA-Z_.]*)\b")


def redis_commands(tree: Path) -> set:
    names = set()
    for f in (tree / "src" / "commands").glob("*.json"):
        for name, spec in json.loads(f.read_text()).items():
            if "container" not in spec:
                names.add(name.upper())
    return names


def commands_used(unit_file: Path, known: set) -> set:
    text = unit_file.read_text(errors="replace")
    return {m.group(1).upper() for m in CALL.finditer(text)} & known


def probe(port: int, command: str) -> str:
    """The first line of the server's reply to COMMAND with no arguments."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"*1\r\n$%d\r\n%s\r\n" % (len(command), command.encode()))
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError as e:
        return f"(probe failed: {e})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--tree")
    parser.add_argument("--probe-port", type=int)
    parser.add_argument("units", nargs="+")
    args = parser.parse_args()
    out, target, units = Path(args.out), args.target, args.units
    known = redis_commands(Path(args.tree)) if args.tree and args.probe_port else set()
    probed = {}
    rows = []
    totals = Counter()
    all_reasons = Counter()
    for unit in units:
        log = out / f"{slug(unit)}.log"
        status = out / f"{slug(unit)}.status"
        text = log.read_text(errors="replace") if log.exists() else ""
        rc, seconds = (status.read_text().split() + ["?", "?"])[:2] if status.exists() else ("?", "?")
        rc = int(rc) if rc.lstrip("-").isdigit() else -1
        parsed = parse(text)
        outcome = outcome_of(rc, parsed)
        reasons = Counter(f["reason"] for f in parsed["failures"])
        if parsed["exception"]:
            exc = parsed["exception"]
            blocker = f"exception: {exc['reason']}"
            if exc["while_executing"]:
                blocker += f" (while executing `{exc['while_executing']}`)"
            reasons[blocker] += 1
        all_reasons.update({r: n for r, n in reasons.items()})
        for key in ("passed", "failed", "skipped", "ignored", "ignored_blocks"):
            totals[key] += parsed[key]
        missing = []
        if known:
            for command in sorted(commands_used(Path(args.tree) / "tests" / f"{unit}.tcl", known) - NOT_PROBED):
                if command not in probed:
                    probed[command] = probe(args.probe_port, command)
                if re.search(r"unknown command", probed[command], re.I):
                    missing.append(command)
        rows.append({"unit": unit, "outcome": outcome, "exit": rc, "seconds": seconds, **parsed,
                     "reasons": reasons.most_common(), "unknown_commands_used": missing})

    md = [f"# Redis test suite against {target}", "",
          "| unit | outcome | passed | failed | ignored tests | ignored blocks | skipped | seconds | main reasons |",
          "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        main_reasons = "; ".join(f"{reason} ×{n}" for reason, n in r["reasons"][:4]) or ""
        md.append(f"| {r['unit']} | {r['outcome']} | {r['passed']} | {r['failed']} | {r['ignored']} | "
                  f"{r['ignored_blocks']} | {r['skipped']} | {r['seconds']} | {main_reasons.replace('|', '/')} |")
    md.append(f"| **total** | | {totals['passed']} | {totals['failed']} | {totals['ignored']} | "
              f"{totals['ignored_blocks']} | {totals['skipped']} | | |")
    md += ["", "Ignored tests/blocks were excluded by tags (--tags) or by the harness itself in external",
           "or single-database mode; an exception ends its unit, so the tests after it did not run.", "",
           "## Failure reasons, all units", "", "| reason | count |", "|---|---:|"]
    for reason, n in all_reasons.most_common():
        md.append(f"| {reason.replace('|', '/')} | {n} |")
    if known:
        md += ["", "## Commands each unit calls that the target answers \"unknown command\"", "",
               "Probed once each with no arguments; the whole file is scanned, tests excluded by tag too;",
               "what fails first in a unit hides the rest.",
               "The suite's own setup before every block sends FLUSHALL and FUNCTION FLUSH; the target answers: "
               + "; ".join(f"{c}: `{probe(args.probe_port, c)}`" for c in SETUP_COMMANDS), "",
               "| unit | unknown commands |", "|---|---|"]
        for r in rows:
            md.append(f"| {r['unit']} | {' '.join(r['unknown_commands_used']) or '(none)'} |")
    md += ["", "## Failed tests", ""]
    for r in rows:
        if not r["failures"] and not r["exception"]:
            continue
        md.append(f"### {r['unit']}")
        md.append("")
        if r["exception"]:
            md.append(f"- **exception**: {r['exception']['message']}"
                      + (f" (while executing `{r['exception']['while_executing']}`)" if r["exception"]["while_executing"] else ""))
        for f in r["failures"]:
            md.append(f"- {f['test']}: {f['message'][:160]}")
        md.append("")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    (out / "summary.json").write_text(json.dumps({"target": target, "units": rows, "totals": totals}, indent=2) + "\n")
    # The table (first lines) on stdout; the details stay in summary.md.
    print("\n".join(md[: 4 + len(rows) + 1]))
    print()
    print("Failure reasons, all units:")
    for reason, n in all_reasons.most_common(15):
        print(f"  {n:4d}  {reason}")
    if known:
        print()
        print("Commands each unit calls that the target answers 'unknown command':")
        for r in rows:
            print(f"  {r['unit']:18s} {' '.join(r['unknown_commands_used']) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
