#!/usr/bin/env python3
"""Prints the ratios of bench/runtime (runtime_bench) results with their targets.

Usage:
  runtime_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
      --benchmark_format=json > results.json
  python3 bench/compare.py results.json

Uses the median of each benchmark (real time) when aggregates are present,
else the single run. Exit status 0 always: a MISS is a measurement to
report, not a build failure (see bench/README.md).
"""
import json
import sys


def load(path):
    with open(path) as f:
        data = json.load(f)
    med = {}
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") != "median":
                continue
        elif name in med:
            continue
        t = b["real_time"]
        unit = b.get("time_unit", "ns")
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
        med[name] = t * scale
    return med


def find(med, prefix):
    hits = [k for k in med if k.startswith(prefix)]
    if not hits:
        return None
    return med[sorted(hits, key=len)[0]]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    med = load(sys.argv[1])
    B = 256 << 20
    g = lambda p: find(med, p)
    lookup = g("BM_RangeTreeFind")
    fault = g("BM_GpuFault2M")
    memcpy2m = g("BM_Memcpy2M")
    raw2m2 = g(f"BM_RawUffdCopy/bytes:{B}/piece:2097152/threads:2")
    raw2m1 = g(f"BM_RawUffdCopy/bytes:{B}/piece:2097152/threads:1")
    raw4k2 = g(f"BM_RawUffdCopy/bytes:{B}/piece:4096/threads:2")
    pmemcpy = g(f"BM_ParallelMemcpy/bytes:{B}/threads:2")
    ev2 = g("BM_EvictContiguous/workers:2")
    ev1 = g("BM_EvictContiguous/workers:1")
    evs = g("BM_EvictScattered/workers:2")
    bc_c1 = g("BM_BatchCopy/coalesce:1/workers:1")
    bc_p1 = g("BM_BatchCopy/coalesce:0/workers:1")
    bc_c2 = g("BM_BatchCopy/coalesce:1/workers:2")

    rows = []

    def row(label, value, unit, target, ok):
        rows.append((label, value, unit, target, ok))

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    row("range lookup, 1M ranges (median ns)", lookup, "ns", "<= 200 ns", lookup is not None and lookup <= 200)
    r = ratio(fault, memcpy2m)
    row("GPU fault 2 MiB / memcpy 2 MiB", r, "x", "<= 1.5x", r is not None and r <= 1.5)
    # Eviction targets of the eviction issue, as throughput ratios
    # (baseline time / measured time: 1.0 = as fast as the baseline).
    r = ratio(raw2m2, ev2)
    row("evict 256M contiguous vs raw UFFDIO_COPY 2M x2 (throughput)", r, "x", ">= 0.8x", r is not None and r >= 0.8)
    r = ratio(pmemcpy, ev2)
    row("evict 256M contiguous vs prefaulted memcpy x2 (throughput)", r, "x", "info", None)
    r = ratio(raw4k2, evs)
    row("evict 256M scattered 4K vs raw UFFDIO_COPY 4K x2 (throughput)", r, "x", ">= 0.7x", r is not None and r >= 0.7)
    r = ratio(bc_p1, bc_c1)
    row("batch copy coalescing gain (coalesced / page by page, 1 worker)", r, "x", ">= 1.2x", r is not None and r >= 1.2)
    gb = ratio(bc_c1, bc_c2)
    row("batch copy parallel gain (2 workers / 1)", gb, "x", "info", None)
    gr = ratio(raw2m1, raw2m2)
    row("raw UFFDIO_COPY parallel gain (2 threads / 1)", gr, "x", "info", None)
    r = ratio(gb, gr)
    row("batch parallel gain / raw parallel gain", r, "", ">= 0.9", r is not None and r >= 0.9)
    ge = ratio(ev1, ev2)
    row("runtime evict parallel gain (copy_workers 2 / 1)", ge, "x", "info", None)

    width = max(len(r[0]) for r in rows)
    for label, value, unit, target, ok in rows:
        v = "n/a" if value is None else (f"{value:.0f} {unit}" if unit == "ns" else f"{value:.2f}{unit}")
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"{label:<{width}}  {v:>10}  target {target:<9} {verdict}")
    sweep(med)
    return 0


def sweep(med):
    """The serial-threshold sweep: parallel gain per call size, and the
    crossover (the smallest size from which two workers never lose)."""
    sizes = sorted({int(k.split("bytes:")[1].split("/")[0])
                    for k in med if k.startswith("BM_BatchCopyThreshold/")})
    if not sizes:
        return
    print()
    print("batch copy serial threshold sweep (scattered 4K frames, 32 MiB in calls of N bytes)")
    print(f"{'call bytes':>10}  {'serial ms':>9}  {'2 workers ms':>12}  {'parallel gain':>13}")
    gains = []
    for n in sizes:
        ser = find(med, f"BM_BatchCopyThreshold/bytes:{n}/parallel:0/")
        par = find(med, f"BM_BatchCopyThreshold/bytes:{n}/parallel:1/")
        if ser is None or par is None:
            continue
        gains.append((n, ser / par))
        print(f"{n:>10}  {ser / 1e6:>9.2f}  {par / 1e6:>12.2f}  {ser / par:>12.2f}x")
    cross = None
    for i, (n, _) in enumerate(gains):
        if all(g >= 1.0 for _, g in gains[i:]):
            cross = n
            break
    if cross is None:
        print("crossover: none; two workers lose at every size here, so serial at every size")
    else:
        print(f"crossover: {cross} bytes (two workers do not lose from here up)")


if __name__ == "__main__":
    sys.exit(main())
