#!/usr/bin/env python3
"""The cluster benchmark of benches/run.sh (issue 15): many daemons, one robot, one Redis.

    benches/cluster_bench.py --dingtail PATH --work DIR --results FILE

BENCH_CLUSTER_HOSTS daemons (default 10), each with its own state directory, host name and log,
share one robot of a DingTalk stand-in on 127.0.0.1 (DingTalk's real limit: 20 messages per
60 s) through a redis-server on 127.0.0.1 at a free port (no persistence). Each log gets
BENCH_CLUSTER_RATE matching lines per second (default 10,000) for BENCH_CLUSTER_SECS (default
60); once a second one probe line goes to one of the hosts in turn. Reported:

- messages per minute at the stand-in (the most in any 60 s, and the average), and that the
  summed counts equal the lines written (exact);
- Redis commands per second (INFO stats, over the writing period);
- p50/p99/max from a probe's write to the arrival of the first message that shows it (probes
  are a rule of their own, critical, so a summary lists them among its samples);
- each daemon's peak RSS (VmHWM) and CPU seconds.

Every figure is printed and appended to the results file as `key value`. Only 127.0.0.1 is used.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_bench import Bench, Standin, env_int, message_count, percentile  # noqa: E402

RULES = """- name: bench-flood
  input: app
  match: 'ERROR (?P<code>E\\d+)'
  severity: warning
  robot: ops
- name: bench-probe
  input: app
  match: 'PROBE (?P<id>p-\\d+)'
  severity: critical
  robot: ops
  title: 'probe {{ id }}'
  template: 'probe {{ id }}'
"""


def redis_cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                         check=False)
    return out.stdout


def commands_processed(port):
    m = re.search(r"total_commands_processed:(\d+)", redis_cli(port, "INFO", "stats"))
    return int(m.group(1)) if m else 0


def start_redis(b):
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is needed (apt-get install redis-server)")
    port = b.free_port()
    data = os.path.join(b.work, "redis")
    subprocess.run(["rm", "-rf", data], check=True)
    os.makedirs(data)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", data, "--save", "", "--appendonly", "no",
                             "--logfile", os.path.join(data, "redis.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        if "PONG" in redis_cli(port, "PING"):
            return proc, port
        time.sleep(0.05)
    sys.exit("redis-server did not start")


def host_config(b, i, redis_port, robot):
    name = f"bench-{i:02d}"
    port = b.free_port()
    state = os.path.join(b.work, f"state-{name}")
    subprocess.run(["rm", "-rf", state], check=True)
    log = os.path.join(b.work, f"{name}.log")
    open(log, "w").close()
    rules = os.path.join(b.work, "rules-cluster.yaml")
    path = os.path.join(b.work, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"state_dir: {state}\nhost: {name}\nlisten: \"127.0.0.1:{port}\"\n"
                f"reload_on_change: false\n"
                f"inputs:\n  app:\n    paths: [{json.dumps(log)}]\n    start_at: end\n"
                f"robots:\n  ops:\n{robot}"
                f"rules: [{json.dumps(rules)}]\n"
                f"cluster:\n  redis: \"redis://127.0.0.1:{redis_port}/0\"\n"
                f"  key_prefix: \"bench:\"\n")
    return name, path, port, log


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dingtail", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    b = Bench(ap.parse_args())
    n_hosts = env_int("BENCH_CLUSTER_HOSTS", 10)
    rate = env_int("BENCH_CLUSTER_RATE", 10000)
    seconds = env_int("BENCH_CLUSTER_SECS", 60)
    with open(os.path.join(b.work, "rules-cluster.yaml"), "w", encoding="utf-8") as f:
        f.write(RULES)
    redis, redis_port = start_redis(b)
    standin = Standin()
    robot = (f"    webhook: \"http://127.0.0.1:{standin.port}/robot/send?access_token=bench\"\n"
             f"    per_minute: 20\n    window: 60s\n")
    hosts = [host_config(b, i, redis_port, robot) for i in range(n_hosts)]
    procs = []
    try:
        for _, config, _, _ in hosts:
            procs.append(b.start(config))
        for proc, (_, _, port, _) in zip(procs, hosts):
            b.wait_ready(proc, port)
        for proc, (_, _, port, log) in zip(procs, hosts):
            b.warm_up(proc, port, [log])
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        line = "2026-11-25 08:00:02.123 ERROR E{:d} [orders-worker-7] payment gateway down\n"
        block = "".join(line.format(i % 97) for i in range(per_tick))
        files = [open(log, "a", encoding="utf-8") for (_, _, _, log) in hosts]
        probes = {}
        written = 0
        commands_before = commands_processed(redis_port)
        start = time.time()
        next_tick = start
        next_probe = start + 0.5
        n_probe = 0
        while time.time() - start < seconds:
            for f in files:
                f.write(block)
                f.flush()
            written += per_tick * len(files)
            now = time.time()
            if now >= next_probe:
                probe_id = f"p-{n_probe}"
                f = files[n_probe % len(files)]
                f.write(f"2026-11-25 08:00:02.123 PROBE {probe_id}\n")
                f.flush()
                probes[probe_id] = time.time()
                n_probe += 1
                written += 1
                next_probe += 1.0
            next_tick += tick
            delay = next_tick - time.time()
            if delay > 0:
                time.sleep(delay)
        wrote_for = time.time() - start
        commands = commands_processed(redis_port) - commands_before
        for f in files:
            f.close()
        # Drain: every count delivered (the budget paces the tail).
        deadline = time.time() + 240
        while time.time() < deadline:
            with standin.cond:
                total = sum(message_count(json.loads(body)) for _, body in standin.arrivals)
            if total >= written:
                break
            time.sleep(0.5)
        time.sleep(2)
        peaks = [b.status(p.pid, "VmHWM") for p in procs]
        cpus = [b.cpu_seconds(p.pid) for p in procs]
    finally:
        for proc in procs:
            b.stop(proc)
        redis.terminate()
        redis.wait()
    with standin.cond:
        arrivals = list(standin.arrivals)
    total = sum(message_count(json.loads(body)) for _, body in arrivals)
    times = sorted(at for at, _ in arrivals)
    most = 0
    j = 0
    for i, at in enumerate(times):
        while times[j] <= at - 60.0:
            j += 1
        most = max(most, i - j + 1)
    span = max(1.0, times[-1] - start) if times else 60.0
    latencies = []
    for probe_id, at in probes.items():
        token = f"probe {probe_id}"
        arrived = next((t for t, body in arrivals if re.search(re.escape(token) + r"\b", body)),
                       None)
        if arrived is not None:
            latencies.append(arrived - at)
    latencies.sort()
    b.report("cluster.hosts", n_hosts)
    b.report("cluster.lines_per_s_per_host", round((written - n_probe) / wrote_for / n_hosts))
    b.report("cluster.lines_written", written)
    b.report("cluster.messages", len(arrivals))
    b.report("cluster.messages_most_in_60s", most)
    b.report("cluster.messages_per_minute_avg", round(len(arrivals) / span * 60, 1))
    b.report("cluster.seconds_until_drained", round(span, 1))
    b.report("cluster.summed_counts", total)
    b.report("cluster.counts_exact", "yes" if total == written else "NO")
    b.report("cluster.redis_commands_per_s", round(commands / wrote_for))
    b.report("cluster.probes_seen", f"{len(latencies)} of {len(probes)}")
    b.report("cluster.match_to_send_p50_s", round(percentile(latencies, 50), 2))
    b.report("cluster.match_to_send_p99_s", round(percentile(latencies, 99), 2))
    b.report("cluster.match_to_send_max_s", round(latencies[-1], 2) if latencies else "nan")
    for (name, _, _, _), peak, cpu in zip(hosts, peaks, cpus):
        b.report(f"cluster.{name}.peak_rss_mib", round(peak, 1))
        b.report(f"cluster.{name}.cpu_s", round(cpu, 1))


if __name__ == "__main__":
    socket.setdefaulttimeout(5)
    main()
