#!/usr/bin/env python3
"""Tests of the `xesvm` command line's output: JSON parsed, CSV columns,
PNG dimensions read back, exit codes.

    cli_test.py XESVM [TestCase.test_name ...]
"""
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

XESVM = None
SMALL = "sim:vram=16M,workers=2"
STATS_FIELDS = [
    "gpu_faults", "cpu_faults", "migrations_to_device", "bytes_to_device", "migrations_to_system",
    "bytes_to_system", "evictions", "pages_evicted", "pages_evict_skipped", "invalidations", "bind_retries",
    "thrash_events", "cpu_mapping_lookups_in_eviction", "device_bytes_in_use", "device_bytes_high_water",
    "device_bytes_total", "modelled_device_ns", "link_bytes"]
LEVELS = {"device_bytes_in_use", "device_bytes_high_water", "device_bytes_total"}
TRACE_COLUMNS = ["time_s", "interval_s", "device_bytes_in_use", "device_bytes_total"] + [
    f for f in STATS_FIELDS if f not in LEVELS]


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("XESVM_BACKEND", None)
    e.update(env or {})
    return subprocess.run([XESVM, *args], capture_output=True, text=True, env=e, timeout=300)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="xesvm-cli-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def json_of(self, *args, env=None, rc=0):
        p = run(*args, env=env)
        self.assertEqual(p.returncode, rc, f"xesvm {' '.join(args)}: stderr {p.stderr}")
        return json.loads(p.stdout)  # the whole of stdout is one JSON document

    def test_version_prints_the_project_version(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.strip(), r"^xesvm \d+\.\d+\.\d+$")

    def test_devices_json_lists_the_sim_device_as_available(self):
        j = self.json_of("devices", "--json")
        self.assertEqual(j["devices"][0]["uri"], "sim:")
        self.assertEqual(j["devices"][0]["state"], "available")
        self.assertTrue(j["devices"][0]["capabilities"]["has_engine"])
        for d in j["devices"]:
            self.assertIn(d["state"], ("available", "unavailable"))
            if d["state"] == "unavailable":
                self.assertTrue(d["reason"], f"{d['uri']} is unavailable without a reason")
        self.assertIn("sim:", run("devices").stdout)

    def test_info_json_reports_numbers_as_numbers(self):
        j = self.json_of("info", "-b", "sim:vram=32M,workers=3", "--json")
        caps = j["capabilities"]
        self.assertEqual(caps["device_memory_bytes"], 32 << 20)
        self.assertEqual(caps["engine_workers"], 3)
        self.assertIs(type(caps["has_engine"]), bool)
        props = j["properties"]
        self.assertEqual(props["engine workers"], 3)
        self.assertEqual(props["device memory"], {"value": 32, "unit": "MiB"})
        self.assertEqual(props["link"][0], {"value": 13, "unit": "GB/s"})
        self.assertEqual(props["link"][1], {"value": 1500, "unit": "ns", "what": "latency"})
        for k, v in props.items():
            if isinstance(v, str):
                self.assertFalse(v.replace(".", "", 1).isdigit(), f"{k} is a number in a string: {v!r}")
        self.assertEqual(sorted(j["stats"]), sorted(STATS_FIELDS))
        self.assertEqual(j["stats"]["device_bytes_total"], 32 << 20)

    def test_info_text_keeps_what_it_shows(self):
        p = run("info", "-b", "sim:vram=32M")
        self.assertEqual(p.returncode, 0)
        for line in ("backend            sim", "device memory      32 MiB", "engine workers", "userfaultfd", "faces"):
            self.assertIn(line, p.stdout)

    def test_backend_comes_from_XESVM_BACKEND_unless_given(self):
        j = self.json_of("info", "--json", env={"XESVM_BACKEND": "sim:vram=8M"})
        self.assertEqual(j["capabilities"]["device_memory_bytes"], 8 << 20)
        j = self.json_of("info", "-b", "sim:vram=4M", "--json", env={"XESVM_BACKEND": "sim:vram=8M"})
        self.assertEqual(j["capabilities"]["device_memory_bytes"], 4 << 20)

    def test_exit_codes_are_the_documented_ones(self):
        self.assertEqual(run("info", "--no-such-option").returncode, 2)
        self.assertEqual(run("stress", "-p", "zigzag", "--json").returncode, 2)
        p = run("info", "-b", "nosuch:thing")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("nosuch", p.stderr)
        if not os.path.exists("/dev/dri"):
            p = run("info", "-b", "xe:")
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("render node", p.stderr)
        self.assertEqual(run("run", "--json", "--", "true").returncode, 2)

    def test_stress_json_carries_every_counter(self):
        j = self.json_of("stress", "-b", SMALL, "-x", "2", "-p", "grid-stride", "-n", "1", "--json", "--no-progress")
        r = j["results"][0]
        self.assertEqual(sorted(r["stats"]), sorted(STATS_FIELDS))
        self.assertEqual(r["data_errors"], 0)
        self.assertEqual(r["passes"], 1)
        self.assertEqual(r["threads"], 1)
        self.assertGreater(r["stats"]["evictions"], 0, "2x oversubscription must evict")
        self.assertGreater(r["stats"]["link_bytes"], 0)
        self.assertEqual(r["stats"]["bytes_to_device"], r["bytes_to_device"])

    def test_stress_threads_each_drive_their_own_allocation_until_the_duration_is_up(self):
        j = self.json_of("stress", "-b", SMALL, "-x", "1.5", "-p", "block-stride", "--threads", "2", "--duration",
                         "1.5", "--json", "--no-progress")
        r = j["results"][0]
        self.assertEqual(r["threads"], 2)
        self.assertGreaterEqual(r["passes"], 2, "each thread runs at least one pass")
        self.assertGreaterEqual(r["wall_s"], 1.5)
        self.assertEqual(r["data_errors"], 0)

    def check_trace(self, path, result):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], TRACE_COLUMNS)
        data = [[float(x) for x in row] for row in rows[1:]]
        self.assertGreaterEqual(len(data), 2)
        col = {n: i for i, n in enumerate(rows[0])}
        last = 0.0
        for row in data:
            self.assertEqual(len(row), len(TRACE_COLUMNS))
            self.assertGreater(row[col["time_s"]], last)
            self.assertGreater(row[col["interval_s"]], 0)
            self.assertLessEqual(row[col["device_bytes_in_use"]], row[col["device_bytes_total"]])
            last = row[col["time_s"]]
        # The rows are the growth per interval: they add up to the totals.
        for name in ("bytes_to_device", "bytes_to_system", "gpu_faults", "evictions", "thrash_events", "link_bytes"):
            self.assertEqual(sum(row[col[name]] for row in data), result["stats"][name], name)
        return data

    def test_stress_trace_has_every_column_and_adds_up_to_the_totals(self):
        trace = os.path.join(self.dir, "t.csv")
        j = self.json_of("stress", "-b", SMALL, "-x", "2", "-p", "random", "-n", "2", "--trace", trace,
                         "--interval", "20", "--json", "--no-progress")
        self.assertEqual(j["trace"]["columns"], TRACE_COLUMNS)
        self.check_trace(trace, j["results"][0])

    def test_csv_writes_the_same_trace(self):
        trace = os.path.join(self.dir, "c.csv")
        j = self.json_of("stress", "-b", SMALL, "-p", "grid-stride", "-n", "1", "--csv", trace, "--interval", "20",
                         "--json", "--no-progress")
        self.check_trace(trace, j["results"][0])

    def test_stress_plot_writes_a_png_whose_size_reads_back(self):
        png = os.path.join(self.dir, "p.png")
        j = self.json_of("stress", "-b", SMALL, "-x", "2", "-p", "grid-stride", "-n", "2", "--interval", "20",
                         "--plot", png, "--json", "--no-progress")
        self.assertGreater(os.path.getsize(png), 10000, "a plot of three panels is not a few bytes")
        w, h = png_size(png)
        self.assertEqual((w, h), (1200, 900))
        self.assertEqual((j["plot"]["width"], j["plot"]["height"]), (w, h))
        self.assertFalse(os.path.exists(png + ".csv"), "the temporary trace is removed")

    def test_plot_draws_a_trace_file(self):
        trace = os.path.join(self.dir, "t.csv")
        self.json_of("stress", "-b", SMALL, "-p", "grid-stride", "-n", "1", "--trace", trace, "--interval", "20",
                     "--json", "--no-progress")
        j = self.json_of("plot", trace, "--json")
        png = os.path.join(self.dir, "t.png")
        self.assertEqual(j["png"], png)
        with open(trace) as f:
            self.assertEqual(j["rows"], len(f.readlines()) - 1)
        self.assertEqual(png_size(png), (j["width"], j["height"]))
        self.assertGreater(os.path.getsize(png), 10000)

    def test_plot_rejects_what_is_not_a_trace(self):
        bad = os.path.join(self.dir, "bad.csv")
        with open(bad, "w") as f:
            f.write("a,b\n1,2\n")
        p = run("plot", bad)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not an xesvm trace", p.stderr)
        p = run("plot", os.path.join(self.dir, "missing.csv"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read trace", p.stderr)
        header_only = os.path.join(self.dir, "empty.csv")
        with open(header_only, "w") as f:
            f.write(",".join(TRACE_COLUMNS) + "\n")
        p = run("plot", header_only)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no data rows", p.stderr)

    def test_run_dry_run_json_describes_the_launch(self):
        p = run("run", "-b", SMALL, "--dry-run", "--json", "--", "my-app", "--its-flag", "x")
        if p.returncode == 4:
            self.skipTest(f"no Level Zero driver in this build: {p.stderr.strip()}")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        env = j["environment"]
        self.assertTrue(os.path.isabs(env["ZE_ENABLE_ALT_DRIVERS"]))
        self.assertTrue(env["ZE_ENABLE_ALT_DRIVERS"].endswith("/libze_xesvm.so"))
        self.assertNotIn("libze_intel", env["ZE_ENABLE_ALT_DRIVERS"])
        self.assertEqual(env["XESVM_BACKEND"], SMALL)
        self.assertEqual(j["command"], ["my-app", "--its-flag", "x"])
        j = self.json_of("run", "--keep-system-drivers", "--dry-run", "--json", "--", "app")
        self.assertTrue(j["environment"]["ZE_ENABLE_ALT_DRIVERS"].endswith(",libze_intel_gpu.so.1"))


if __name__ == "__main__":
    XESVM = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
