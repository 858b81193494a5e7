#!/usr/bin/env python3
"""The daemon benchmarks of benches/run.sh: `dingtail run` measured from outside (issue 7).

    benches/daemon_bench.py catchup|latency|idle|flood --dingtail PATH --work DIR --results FILE

- catchup: BENCH_LOG (BENCH_LOG_LINES lines) read from the beginning with the `stdout` robot;
  seconds until /metrics shows every line read and no pending event, peak RSS (VmHWM).
- latency: BENCH_FILES files watched; BENCH_LINES lines appended, one at a time, each to a random
  file; the time from the write to the HTTP request at a stand-in robot on 127.0.0.1 (linger 0s,
  rate limit set high so that it is not what is measured): p50, p99, max.
- idle: BENCH_FILES quiet files for BENCH_IDLE_SECS: CPU time from /proc/PID/stat, RSS.
- flood: BENCH_FLOOD_RATE matching lines per second for BENCH_FLOOD_SECS into one file, `stdout`
  robot with its default rate limit: peak RSS, and the counts summed over the printed messages
  equal to the lines written.
- steady: one file written BENCH_STEADY_WRITES times a second (one `write` each), at each rate
  of BENCH_STEADY_RATES lines a second, with realistic lines (genlog.py, about 0.1 % matching)
  and the 100-rule set; CPU time (utime + stime of the whole process group, /proc/PID/stat)
  over BENCH_STEADY_SECS of `dingtail run` (`stdout` robot), then of swatchdog following the
  same kind of file with the same patterns; BENCH_RUNS runs, interleaved, medians reported,
  with the machine's load while measuring.
- write: the steady benchmark's writer alone (`--path`, `--rate`, `--secs`), to profile a
  daemon started by hand (see BENCHMARKS.md).

Every figure is printed and appended to the results file as `key value`. Only 127.0.0.1 is used.
"""

import argparse
import http.server
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


class Bench:
    def __init__(self, args):
        self.dingtail = args.dingtail
        self.work = os.path.abspath(args.work)
        self.results = args.results
        os.makedirs(self.work, exist_ok=True)

    def report(self, key, value):
        print(f"{key:<44} {value}", flush=True)
        with open(self.results, "a", encoding="utf-8") as f:
            f.write(f"{key} {value}\n")

    def free_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def config(self, name, paths, robot, start_at="end", extra_input=""):
        """Writes a config with one input `app` and one robot `ops`; returns (path, metrics port)."""
        port = self.free_port()
        state = os.path.join(self.work, f"state-{name}")
        subprocess.run(["rm", "-rf", state], check=True)
        rules = os.path.join(self.work, f"rules-{name}.yaml")
        with open(rules, "w", encoding="utf-8") as f:
            f.write(self.rules_yaml)
        path = os.path.join(self.work, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"language: en\nstate_dir: {state}\nhost: bench\nlisten: \"127.0.0.1:{port}\"\n"
                    f"reload_on_change: false\n"
                    f"inputs:\n  app:\n    paths: {json.dumps(paths)}\n    start_at: {start_at}\n"
                    f"{extra_input}"
                    f"robots:\n  ops:\n{robot}"
                    f"rules: [{json.dumps(rules)}]\n")
        return path, port

    rules_yaml = ""

    def start(self, config, stdout=subprocess.DEVNULL):
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        return subprocess.Popen([self.dingtail, "run", "-c", config], stdout=stdout,
                                stderr=open(os.path.join(self.work, "daemon.err"), "ab"), env=env)

    @staticmethod
    def metrics(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            name = name.split("{")[0]
            try:
                out[name] = out.get(name, 0) + float(value)
            except ValueError:
                pass
        return out

    def wait_ready(self, proc, port, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                sys.exit(f"dingtail run exited with {proc.returncode}; see {self.work}/daemon.err")
            if self.metrics(port) is not None:
                return
            time.sleep(0.05)
        sys.exit("dingtail run did not serve /metrics in time")

    @staticmethod
    def status(pid, key):
        """A `kB` field of /proc/PID/status, in MiB."""
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    @staticmethod
    def cpu_seconds(pid):
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 (1-based) of the whole line.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def warm_up(self, proc, port, paths, timeout=60):
        """Appends ordinary lines to every file until the daemon follows them all (a line written
        before a file is discovered counts as old content under `start_at: end`), then waits until
        reading has settled."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                sys.exit(f"dingtail run exited with {proc.returncode}; see {self.work}/daemon.err")
            for path in paths:
                with open(path, "a", encoding="utf-8") as f:
                    f.write("2026-11-25 08:00:00 INFO warm-up\n")
            time.sleep(0.25)
            if (self.metrics(port) or {}).get("dingtail_files_watched", 0) >= len(paths):
                break
        else:
            sys.exit(f"the daemon did not follow all {len(paths)} files in {timeout} s")
        last = -1
        while time.time() < deadline:
            read = (self.metrics(port) or {}).get("dingtail_lines_read_total", 0)
            if read == last:
                return
            last = read
            time.sleep(0.5)

    def make_files(self, n):
        directory = os.path.join(self.work, "files")
        subprocess.run(["rm", "-rf", directory], check=True)
        os.makedirs(directory)
        paths = []
        for i in range(n):
            path = os.path.join(directory, f"app-{i:04d}.log")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"2026-11-25 08:00:00 INFO started file {i}\n")
            paths.append(path)
        return directory, paths


def catchup(b):
    log = os.environ["BENCH_LOG"]
    lines = int(os.environ["BENCH_LOG_LINES"])
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules-10.yaml"),
              encoding="utf-8") as f:
        b.rules_yaml = f.read()
    config, port = b.config("catchup", [log], "    webhook: stdout\n    linger: 0s\n"
                            "    per_minute: 10000\n    window: 1s\n", start_at="beginning")
    out_path = os.path.join(b.work, "catchup.out")
    with open(out_path, "wb") as out:
        started = time.time()
        proc = b.start(config, stdout=out)
        try:
            b.wait_ready(proc, port)
            m = {}
            while True:
                m = b.metrics(port) or m
                if (m.get("dingtail_lines_read_total", 0) >= lines
                        and m.get("dingtail_pending_events", 1) == 0):
                    break
                if proc.poll() is not None:
                    sys.exit(f"dingtail run exited with {proc.returncode}")
                time.sleep(0.02)
            elapsed = time.time() - started
            hwm = b.status(proc.pid, "VmHWM")
        finally:
            b.stop(proc)
    size = os.path.getsize(log)
    b.report("catchup.seconds", round(elapsed, 3))
    b.report("catchup.mb_per_s", round(size / elapsed / 1e6, 1))
    b.report("catchup.lines_per_s", round(lines / elapsed))
    b.report("catchup.matches", int(m.get("dingtail_matches_total", 0)))
    b.report("catchup.messages", int(m.get("dingtail_messages_sent_total", 0)))
    b.report("catchup.peak_rss_mib", round(hwm, 1))


class Standin:
    """A DingTalk stand-in on 127.0.0.1 that records the arrival time of every request."""

    def __init__(self):
        self.arrivals = []  # (time, body)
        self.cond = threading.Condition()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: with Nagle on, the body would wait for the
            # client's delayed ACK (40 ms) and the stand-in would measure itself.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.time()
                with standin.cond:
                    standin.arrivals.append((at, body.decode("utf-8", "replace")))
                    standin.cond.notify_all()
                reply = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, token, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for at, body in reversed(self.arrivals):
                    if token in body:
                        return at
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency(b):
    n_files = env_int("BENCH_FILES", 1000)
    n_lines = env_int("BENCH_LINES", 1000)
    b.rules_yaml = ("- name: bench-latency\n  input: app\n  match: 'ALERT (?P<id>lat-\\d+)'\n"
                    "  severity: critical\n  robot: ops\n  title: '{{ id }}'\n")
    directory, paths = b.make_files(n_files)
    standin = Standin()
    robot = (f"    webhook: \"http://127.0.0.1:{standin.port}/robot/send?access_token=bench\"\n"
             f"    linger: 0s\n    per_minute: 10000\n    window: 1s\n")
    config, port = b.config("latency", [os.path.join(directory, "*.log")], robot)
    proc = b.start(config)
    rng = random.Random(7)
    samples = []
    missed = 0
    try:
        b.wait_ready(proc, port)
        b.warm_up(proc, port, paths)
        for i in range(n_lines):
            token = f"lat-{i:06d}"
            with open(rng.choice(paths), "a", encoding="utf-8") as f:
                written = time.time()
                f.write(f"2026-11-25 08:00:01 ERROR ALERT {token} payment declined\n")
            arrived = standin.wait_for(token, 5)
            if arrived is None:
                missed += 1
            else:
                samples.append(arrived - written)
            time.sleep(0.005)
        rss = b.status(proc.pid, "VmRSS")
    finally:
        b.stop(proc)
        standin.server.shutdown()
    samples.sort()
    b.report("latency.files", n_files)
    b.report("latency.lines", n_lines)
    b.report("latency.missed", missed)
    b.report("latency.p50_ms", round(percentile(samples, 50) * 1000, 2))
    b.report("latency.p99_ms", round(percentile(samples, 99) * 1000, 2))
    b.report("latency.max_ms", round(samples[-1] * 1000, 2) if samples else "nan")
    b.report("latency.rss_mib", round(rss, 1))


def idle(b):
    n_files = env_int("BENCH_FILES", 1000)
    seconds = env_int("BENCH_IDLE_SECS", 60)
    b.rules_yaml = ("- name: bench-idle\n  input: app\n  match: 'ALERT'\n"
                    "  severity: critical\n  robot: ops\n")
    directory, paths = b.make_files(n_files)
    config, port = b.config("idle", [os.path.join(directory, "*.log")], "    webhook: stdout\n")
    proc = b.start(config)
    try:
        b.wait_ready(proc, port)
        b.warm_up(proc, port, paths)
        # Settle: discovery, the first reads and checkpoints are start-up, not idling.
        time.sleep(5)
        cpu0, t0 = b.cpu_seconds(proc.pid), time.time()
        time.sleep(seconds)
        cpu1, t1 = b.cpu_seconds(proc.pid), time.time()
        rss = b.status(proc.pid, "VmRSS")
        hwm = b.status(proc.pid, "VmHWM")
        watched = (b.metrics(port) or {}).get("dingtail_files_watched", 0)
    finally:
        b.stop(proc)
    b.report("idle.files", int(watched))
    b.report("idle.seconds", round(t1 - t0, 1))
    b.report("idle.cpu_seconds", round(cpu1 - cpu0, 3))
    b.report("idle.cpu_percent_of_core", round((cpu1 - cpu0) / (t1 - t0) * 100, 3))
    b.report("idle.rss_mib", round(rss, 1))
    b.report("idle.peak_rss_mib", round(hwm, 1))


def flood(b):
    rate = env_int("BENCH_FLOOD_RATE", 100000)
    seconds = env_int("BENCH_FLOOD_SECS", 30)
    b.rules_yaml = ("- name: bench-flood\n  input: app\n  match: 'ERROR (?P<code>E\\d+)'\n"
                    "  severity: critical\n  robot: ops\n")
    path = os.path.join(b.work, "flood.log")
    open(path, "w").close()
    config, port = b.config("flood", [path], "    webhook: stdout\n")
    out_path = os.path.join(b.work, "flood.out")
    tick = 0.01
    per_tick = rate * tick
    line = "2026-11-25 08:00:02.123 ERROR E{:d} [orders-worker-7] c.e.orders.Api - payment gateway down\n"
    block = "".join(line.format(i % 97) for i in range(int(per_tick)))
    written = 0
    peak = 0.0
    with open(out_path, "wb") as out:
        proc = b.start(config, stdout=out)
        try:
            b.wait_ready(proc, port)
            time.sleep(1)
            with open(path, "a", encoding="utf-8") as f:
                start = time.time()
                next_tick = start
                while time.time() - start < seconds:
                    f.write(block)
                    f.flush()
                    written += int(per_tick)
                    next_tick += tick
                    delay = next_tick - time.time()
                    if delay > 0:
                        time.sleep(delay)
                    if written % (rate // 2) < per_tick:
                        peak = max(peak, b.status(proc.pid, "VmRSS"))
                wrote_for = time.time() - start
            # Drain: every line read and every event delivered (the rate limit paces the tail).
            deadline = time.time() + 180
            m = {}
            while time.time() < deadline:
                m = b.metrics(port) or m
                peak = max(peak, b.status(proc.pid, "VmRSS"))
                if (m.get("dingtail_lines_read_total", 0) >= written + 0
                        and m.get("dingtail_pending_events", 1) == 0):
                    break
                time.sleep(0.2)
            drained = time.time() - start
            hwm = b.status(proc.pid, "VmHWM")
        finally:
            b.stop(proc)
    counted = sum_counts(out_path)
    b.report("flood.lines_written", written)
    b.report("flood.write_seconds", round(wrote_for, 2))
    b.report("flood.lines_per_s_written", round(written / wrote_for))
    b.report("flood.seconds_until_drained", round(drained, 1))
    b.report("flood.matches_metric", int(m.get("dingtail_matches_total", 0)))
    b.report("flood.messages", counted[1])
    b.report("flood.summed_counts", counted[0])
    b.report("flood.counts_exact", "yes" if counted[0] == written else "NO")
    b.report("flood.peak_rss_mib", round(max(peak, hwm), 1))


def sum_counts(path):
    """(sum of the counts, messages) over the JSON bodies the `stdout` robot printed."""
    total = 0
    messages = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            messages += 1
            total += message_count(json.loads(line))
    return total, messages


def message_count(body):
    """The number of events one message stands for: a summary's title says `N alerts from`, a
    message about one event does not."""
    title = ""
    for value in body.values():
        if isinstance(value, dict) and "title" in value:
            title = value["title"]
    m = re.search(r"(\d+) alerts? from", title)
    return int(m.group(1)) if m else 1


def steady_lines(work):
    """The lines the steady writer cycles through: BENCH_STEADY_POOL (16M) of genlog.py's mix
    (about 0.1 % matching the benchmark rules), generated once per work dir."""
    size = os.environ.get("BENCH_STEADY_POOL", "16M")
    path = os.path.join(work, f"steady-pool-{size}.log")
    if not os.path.exists(path):
        genlog = os.path.join(os.path.dirname(os.path.abspath(__file__)), "genlog.py")
        with open(path + ".tmp", "wb") as out:
            subprocess.run([sys.executable, genlog, "--size", size, "--seed", "1"], stdout=out,
                           check=True)
        os.rename(path + ".tmp", path)
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


class Writer:
    """Appends to `path` `writes` times a second, `rate / writes` lines each time, one `write`
    system call each (the file stays open, as a web server's does)."""

    def __init__(self, path, rate, writes, pool):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.per_write = max(1, rate // writes)
        self.tick = 1 / writes
        self.pool = pool
        self.at = 0
        self.next = time.monotonic()
        self.written = 0

    def write_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            chunk = self.pool[self.at:self.at + self.per_write]
            self.at += self.per_write
            if self.at >= len(self.pool):
                self.at = 0
            os.write(self.fd, b"".join(chunk))
            self.written += len(chunk)
            self.next += self.tick
            delay = self.next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1:
                # Fell more than a second behind (a loaded machine): do not burst to catch up.
                self.next = time.monotonic()

    def close(self):
        os.close(self.fd)


def group_cpu(pgid):
    """CPU seconds (utime + stime) of every live process of process group `pgid`."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp (field 5 of the whole line), ... utime, stime.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def machine_busy():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat", encoding="utf-8") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def steady_one(b, tool, rate, writes, seconds, pool, swatch_conf):
    """One measurement: returns (CPU % of a core, machine busy % of all cores, load average)."""
    # A directory of its own: a write to any other file of a watched directory (the results,
    # a profiler's output) wakes the daemon too.
    directory = os.path.join(b.work, "steady")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "steady.log")
    open(path, "w").close()
    if tool == "dingtail":
        config, port = b.config("steady", [path], "    webhook: stdout\n")
        proc = subprocess.Popen([b.dingtail, "run", "-c", config], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(b.work, "daemon.err"), "ab"),
                                env=dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn")),
                                start_new_session=True)
    else:
        proc = subprocess.Popen(["swatchdog", "-c", swatch_conf, "-t", path,
                                 f"--script-dir={b.work}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    writer = Writer(path, rate, writes, pool)
    try:
        if tool == "dingtail":
            b.wait_ready(proc, port)
        else:
            time.sleep(2)  # perl compiles the script and starts `tail -F`
        if proc.poll() is not None:
            sys.exit(f"{tool} exited with {proc.returncode}")
        # Warm up: the first lines, the first commits and sends are start-up.
        writer.write_for(env_float("BENCH_STEADY_WARMUP", 3))
        cpu0, busy0, load0 = group_cpu(proc.pid), machine_busy(), os.getloadavg()[0]
        t0 = time.monotonic()
        writer.write_for(seconds)
        cpu1, busy1, load1 = group_cpu(proc.pid), machine_busy(), os.getloadavg()[0]
        t1 = time.monotonic()
        if proc.poll() is not None:
            sys.exit(f"{tool} exited with {proc.returncode}")
    finally:
        writer.close()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.remove(path)
    cpu = (cpu1 - cpu0) / (t1 - t0) * 100
    busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * 100
    return cpu, busy, (load0 + load1) / 2


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def steady(b):
    rates = [int(r) for r in os.environ.get("BENCH_STEADY_RATES", "100,1000,10000,50000").split(",")]
    writes = env_int("BENCH_STEADY_WRITES", 100)
    seconds = env_float("BENCH_STEADY_SECS", 15)
    runs = env_int("BENCH_RUNS", 3)
    tools = os.environ.get("BENCH_STEADY_TOOLS", "dingtail,swatchdog").split(",")
    if "swatchdog" in tools and subprocess.run(["sh", "-c", "command -v swatchdog"],
                                               stdout=subprocess.DEVNULL).returncode != 0:
        print("  missing: swatchdog (apt-get install swatch); skipping its comparison", file=sys.stderr)
        b.report("skipped.swatchdog", "not installed (apt-get install swatch)")
        tools = [t for t in tools if t != "swatchdog"]
    here = os.path.dirname(os.path.abspath(__file__))
    rules = os.path.join(here, "rules-100.yaml")
    with open(rules, encoding="utf-8") as f:
        b.rules_yaml = f.read()
    swatch_conf = os.path.join(b.work, "p100.swatch")
    with open(swatch_conf, "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, os.path.join(here, "patterns.py"), rules, "swatch"],
                       stdout=out, check=True)
    pool = steady_lines(b.work)
    figures = {}
    for run in range(runs):
        for rate in rates:
            for tool in tools:
                cpu, busy, load = steady_one(b, tool, rate, writes, seconds, pool, swatch_conf)
                print(f"  run {run + 1}: {tool} at {rate} lines/s: {cpu:.2f} % of a core "
                      f"(machine {busy:.0f} % busy, load {load:.2f})", flush=True)
                figures.setdefault((rate, tool), []).append((cpu, busy, load))
    b.report("steady.writes_per_s", writes)
    b.report("steady.seconds", seconds)
    b.report("steady.runs", runs)
    for rate in rates:
        for tool in tools:
            values = figures[(rate, tool)]
            key = f"steady.lines{rate}.{tool}"
            b.report(f"{key}.cpu_percent_of_core", round(median([v[0] for v in values]), 3))
            b.report(f"{key}.cpu_percent_runs", " ".join(f"{v[0]:.3f}" for v in values))
            b.report(f"{key}.machine_busy_percent", round(median([v[1] for v in values]), 1))
            b.report(f"{key}.load_average", round(median([v[2] for v in values]), 2))
        if "dingtail" in tools and "swatchdog" in tools:
            d = median([v[0] for v in figures[(rate, "dingtail")]])
            s = median([v[0] for v in figures[(rate, "swatchdog")]])
            b.report(f"steady.lines{rate}.ratio.swatchdog_over_dingtail",
                     round(s / d, 1) if d > 0 else "inf")


def write(args):
    """The steady writer alone, for profiling a daemon started by hand."""
    pool = steady_lines(os.path.abspath(args.work))
    writer = Writer(args.path, args.rate, args.writes, pool)
    try:
        writer.write_for(args.secs)
    finally:
        writer.close()
    print(f"wrote {writer.written} lines", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["catchup", "latency", "idle", "flood", "steady", "write"])
    ap.add_argument("--dingtail")
    ap.add_argument("--work", required=True)
    ap.add_argument("--results")
    ap.add_argument("--path", help="write: the file to append to")
    ap.add_argument("--rate", type=int, default=10000, help="write: lines a second")
    ap.add_argument("--writes", type=int, default=100, help="write: writes a second")
    ap.add_argument("--secs", type=float, default=60, help="write: for how long")
    args = ap.parse_args()
    if args.what == "write":
        write(args)
        return
    if not args.dingtail or not args.results:
        ap.error("--dingtail and --results are required")
    b = Bench(args)
    {"catchup": catchup, "latency": latency, "idle": idle, "flood": flood,
     "steady": steady}[args.what](b)


if __name__ == "__main__":
    main()
