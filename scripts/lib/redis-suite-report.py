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

Usage: redis-suite-report.py OUT-DIR TARGET-DESCRIPTION UNIT...
Reads OUT-DIR/<slug>.log and OUT-DIR/<slug>.status ("rc seconds"), writes OUT-DIR/summary.md and
OUT-DIR/summary.json, and prints the markdown table.
"""

import json
import re
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
            where = ""
            for k, d in enumerate(details):
                if d.strip() == "while executing" and k + 1 < len(details):
                    where = details[k + 1].strip().strip('"')
                    break
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


def main() -> int:
    out = Path(sys.argv[1])
    target = sys.argv[2]
    units = sys.argv[3:]
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
        rows.append({"unit": unit, "outcome": outcome, "exit": rc, "seconds": seconds, **parsed,
                     "reasons": reasons.most_common()})

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
