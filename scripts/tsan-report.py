#!/usr/bin/env python3
"""Groups the ThreadSanitizer reports of a test run (docs/FUZZING.md, "Sanitizers").

Usage: scripts/tsan-report.py REPORT_DIR [SOURCE_ROOT]

Each report names two accesses. For each, the first frame in SOURCE_ROOT's own sources (not
.build) is shown, and whether the access happens under a Mutex: a frame of its stack is a line
that calls withLock, or its first frame sits inside a withLock closure. Synchronization.Mutex
waits on futexes that TSan does not model on Linux, so the accesses it guards are reported as
races; a report with an access not under a Mutex is a race to look at, and makes this script exit
with status 1.
"""
import collections, glob, os, re, sys

report_dir = sys.argv[1]
root = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), ".."))
sources = {}


def source(path):
    if path not in sources:
        try:
            sources[path] = open(path).read().split("\n")
        except OSError:
            sources[path] = []
    return sources[path]


def own_frames(section):
    pattern = r"#\d+ \S+ (" + re.escape(root) + r"/\S+?):(\d+)"
    return [(path, int(line)) for path, line in re.findall(pattern, section) if "/.build" not in path]


def inside_with_lock(path, line):
    """Whether `line` sits in a closure opened on a line that calls withLock, in the same function."""
    lines = source(path)
    depth = 0
    for index in range(min(line - 1, len(lines) - 1), max(-1, line - 80), -1):
        text = lines[index]
        if index != line - 1:
            depth += text.count("}") - text.count("{")
        if depth < 0 and "withLock" in text:
            return True
        if re.match(r"\s*((private|public|static|fileprivate|internal|mutating|override|final) )*func ", text):
            return False
    return False


def under_mutex(section):
    frames = own_frames(section)
    if not frames:
        return None
    for path, line in frames[:6]:
        lines = source(path)
        if 0 < line <= len(lines) and "withLock" in lines[line - 1]:
            return True
    return inside_with_lock(*frames[0])


groups, examples, total = collections.Counter(), {}, 0
for path in glob.glob(os.path.join(report_dir, "*")):
    text = open(path, errors="replace").read()
    for chunk in text.split("WARNING: ThreadSanitizer: ")[1:]:
        total += 1
        kind = chunk.split("(")[0].strip()
        chunk = chunk.split("SUMMARY:")[0]
        parts = re.split(r"\n  (?=(?:Previous )?(?:[Ww]rite|[Rr]ead|[Mm]odifying|[Aa]tomic))", chunk)
        sections = [part for part in parts[1:] if "#0" in part][:2]
        firsts = tuple((own_frames(section) or [None])[0] for section in sections)
        marks = tuple(under_mutex(section) for section in sections)
        key = (kind, firsts, marks)
        groups[key] += 1
        examples.setdefault(key, path)


def show(frame):
    return f"{os.path.relpath(frame[0], root)}:{frame[1]}" if frame else "(none)"


suspicious = 0
for (kind, firsts, marks), count in groups.most_common():
    guarded = len(marks) == 2 and all(marks)
    suspicious += 0 if guarded else count
    verdict = "both under a Mutex" if guarded else f"LOOK: under a Mutex {marks}"
    print(f"{count:5} {kind:18} {' | '.join(show(f) for f in firsts):80} {verdict}  ({examples[(kind, firsts, marks)]})")
files = {path for path in glob.glob(os.path.join(report_dir, "*"))}
print(f"{total} reports from {len(files)} processes in {len(groups)} groups; {suspicious} with an access not under a Mutex")
sys.exit(1 if suspicious else 0)
