#!/usr/bin/env python3
"""Parse the guest test log (kselftest TAP inside XESVM-BEGIN/END blocks)
and the kernel console log.

usage: tap.py TESTS_LOG CONSOLE_LOG PLAN [--json OUT]

Prints one line per failed or skipped test with its reason, then
"<label>: N passed, N failed, N skipped". Exit status 0 only if nothing
failed, every planned block ran to its end, and the console log holds no
kernel splat.
"""
import json
import re
import sys

SPLAT = re.compile(
    r"(WARNING:|BUG:|kernel BUG|Oops:|general protection fault|"
    r"possible circular locking|possible recursive locking|"
    r"inconsistent lock state|INFO: lockdep|INFO: task .* blocked|"
    r"soft lockup|hard LOCKUP|rcu_sched self-detected stall|"
    r"rcu: INFO|Kernel panic|UBSAN|KASAN|list_add corruption|"
    r"list_del corruption|Bad page state|BUG_ON|Call Trace:|"
    # SLUB debugging: "BUG kmalloc-64 (Not tainted): Poison overwritten"
    r"BUG \S+ \((Not t|T)ainted)")
# lines that match SPLAT but are harmless boot chatter
BENIGN = re.compile(r"(lockdep: .*enabled|Lock dependency validator|"
                    r"\.\.\. MAX_LOCK|\.\.\. MAX_LOCKDEP|\.\.\. CHAINHASH|"
                    r"\.\.\. CLASSHASH|per task-struct memory footprint|"
                    r"in-kernel lockdep)", re.I)
TAP = re.compile(r"^(not ok|ok) (\d+) (.*?)(?:\s+#\s*(SKIP|TODO|XFAIL)\b(.*))?$")


def parse(tests_log, plan):
    results = []          # (block, test, status, reason)
    blocks = {}
    cur = None
    ctx = []
    with open(tests_log, errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f]
    for line in lines:
        m = re.match(r"^XESVM-BEGIN (\S+)", line)
        if m:
            cur = m.group(1)
            blocks[cur] = {"rc": None, "tap": 0}
            ctx = []
            continue
        m = re.match(r"^XESVM-END (\S+) rc=(\d+) start=(\S+) end=(\S+)", line)
        if m and cur == m.group(1):
            b = blocks[cur]
            b["rc"] = int(m.group(2))
            b["secs"] = float(m.group(4)) - float(m.group(3))
            cur = None
            continue
        if cur is None:
            continue
        m = TAP.match(line.strip())
        if m:
            ok, _, name, directive, why = m.groups()
            name = name.strip()
            if name.startswith("# "):
                continue
            blocks[cur]["tap"] += 1
            if directive == "SKIP":
                st = "skip"
                reason = (why or "").strip()
            elif ok == "ok":
                st = "pass"
                reason = ""
            else:
                st = "fail"
                reason = " | ".join(c for c in ctx[-4:] if c) or "no reason printed"
            results.append((cur, name, st, reason))
            ctx = []
            continue
        s = line.strip()
        if s.startswith("#") and not s.startswith("# RUN") and \
                not s.startswith("# OK") and not s.startswith("# Totals") \
                and not s.startswith("# PASSED") and not s.startswith("# FAILED"):
            ctx.append(s.lstrip("# ").strip())
    for name in plan:
        b = blocks.get(name)
        if b is None:
            results.append((name, "(block)", "fail", "did not run (guest died or QEMU timed out)"))
        elif b["rc"] is None:
            results.append((name, "(block)", "fail", "did not finish (guest died or QEMU timed out)"))
        elif b["rc"] == 137:
            results.append((name, "(block)", "fail", "killed by the guest watchdog (timeout)"))
        elif b["rc"] != 0 and not any(r[0] == name and r[2] == "fail" for r in results):
            results.append((name, "(block)", "fail", "exit status %d" % b["rc"]))
        elif b["tap"] == 0:
            results.append((name, "(block)", "fail", "no TAP results"))
    return results, blocks


def splats(console_log):
    found = []
    try:
        with open(console_log, errors="replace") as f:
            for line in f:
                if SPLAT.search(line) and not BENIGN.search(line):
                    found.append(line.rstrip())
    except FileNotFoundError:
        found.append("console log missing")
    return found


def main():
    args = sys.argv[1:]
    out_json = None
    label = "kernel"
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i:i + 2]
    if "--label" in args:
        i = args.index("--label")
        label = args[i + 1]
        del args[i:i + 2]
    tests_log, console_log, plan_file = args
    plan = []
    with open(plan_file) as f:
        for l in f:
            p = l.split()
            if len(p) >= 3 and not p[0].startswith("#"):
                plan.append(p[1])
    results, blocks = parse(tests_log, plan)
    sp = splats(console_log)
    npass = sum(1 for r in results if r[2] == "pass")
    nfail = sum(1 for r in results if r[2] == "fail")
    nskip = sum(1 for r in results if r[2] == "skip")
    for b, t, st, reason in results:
        if st != "pass":
            print("  %-4s %s: %s%s" % (st.upper(), b, t, (" -- " + reason) if reason else ""))
    for b, info in blocks.items():
        if "secs" in info:
            print("  time %s: %.1f s" % (b, info["secs"]))
    if sp:
        print("  kernel splats in the console log:")
        for l in sp[:40]:
            print("    " + l)
    # per-block counts, read by run.sh for the suites with their own
    # closing line (guest-suites: "igt: N passed, ...")
    for name in plan:
        rs = [r for r in results if r[0] == name]
        print("  block %s: %d passed, %d failed, %d skipped" % (
            name, sum(1 for r in rs if r[2] == "pass"),
            sum(1 for r in rs if r[2] == "fail"),
            sum(1 for r in rs if r[2] == "skip")))
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"results": results, "splats": sp,
                       "blocks": blocks}, f, indent=1)
    print("%s: %d passed, %d failed, %d skipped" % (label, npass, nfail, nskip))
    sys.exit(1 if nfail or sp else 0)


if __name__ == "__main__":
    main()
