#!/usr/bin/env python3
"""Generate realistic logs for dingtail's benchmarks, deterministic by seed, at any size.

    benches/genlog.py --kind mixed --size 1G --seed 1 --match-rate 0.001 > /tmp/bench.log

Kinds: nginx (access), nginx-error, java (services with stack traces), syslog (kernel, systemd,
sshd), mixed (all of them interleaved). About `--match-rate` of the lines are ones the benchmark
rules (benches/rules-10.yaml, benches/rules-100.yaml) match; the rest are ordinary traffic.
"""

import argparse
import random
import sys

PATHS = ["/", "/api/v1/orders", "/api/v1/users/42", "/static/app.js", "/login", "/cart",
         "/api/v2/search?q=shoes", "/healthz", "/favicon.ico", "/checkout/confirm"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
          "curl/8.5.0", "Go-http-client/1.1", "kube-probe/1.29",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15"]
SERVICES = ["payments", "orders", "inventory", "gateway"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def parse_size(text):
    text = text.strip().upper()
    for suffix, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


class Gen:
    def __init__(self, seed, match_rate):
        self.r = random.Random(seed)
        self.match_rate = match_rate
        self.t = 1_700_000_000

    def ip(self):
        r = self.r
        return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def tick(self):
        self.t += self.r.random() < 0.3
        return self.t

    def stamp_iso(self):
        t = self.tick()
        d, s = divmod(t, 86400)
        return f"2026-11-{(d % 28) + 1:02d} {s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}.{self.r.randint(0, 999):03d}"

    def stamp_clf(self):
        t = self.tick()
        d, s = divmod(t, 86400)
        return f"{(d % 28) + 1:02d}/Nov/2026:{s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d} +0800"

    def stamp_syslog(self):
        t = self.tick()
        d, s = divmod(t, 86400)
        return f"Nov {(d % 28) + 1:2d} {s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"

    def hit(self):
        return self.r.random() < self.match_rate

    def nginx(self):
        r = self.r
        if self.hit():
            status = r.choice([500, 502, 503, 504])
        else:
            status = r.choice([200] * 20 + [301, 304, 404, 401, 403])
        method = r.choice(["GET"] * 6 + ["POST", "PUT", "DELETE"])
        rt = r.random() * (3 if status >= 500 else 0.2)
        return (f'{self.ip()} - - [{self.stamp_clf()}] "{method} {r.choice(PATHS)} HTTP/1.1" {status} '
                f'{r.randint(0, 50000)} "-" "{r.choice(AGENTS)}" rt={rt:.3f}\n')

    def nginx_error(self):
        r = self.r
        if self.hit():
            return (f"{self.stamp_iso()[:19].replace('-', '/')} [error] {r.randint(100, 9999)}#0: *{r.randint(1, 10**6)} "
                    f"upstream timed out (110: Connection timed out) while reading response header from upstream, "
                    f"client: {self.ip()}, server: shop.example, request: \"GET {r.choice(PATHS)} HTTP/1.1\", "
                    f"upstream: \"http://10.0.3.{r.randint(1, 254)}:8080{r.choice(PATHS)}\"\n")
        return (f"{self.stamp_iso()[:19].replace('-', '/')} [notice] {r.randint(100, 9999)}#0: signal process started\n"
                if r.random() < 0.5 else
                f"{self.stamp_iso()[:19].replace('-', '/')} [info] {r.randint(100, 9999)}#0: *{r.randint(1, 10**6)} "
                f"client {self.ip()} closed keepalive connection\n")

    def java(self):
        r = self.r
        svc = r.choice(SERVICES)
        if self.hit():
            exc = r.choice(["java.lang.NullPointerException", "java.sql.SQLTransientConnectionException",
                            "java.util.concurrent.TimeoutException"])
            frames = "".join(f"\tat com.example.{svc}.Service{i}.handle(Service{i}.java:{r.randint(10, 500)})\n"
                             for i in range(r.randint(3, 12)))
            return (f"{self.stamp_iso()} ERROR [{svc}-worker-{r.randint(1, 32)}] c.e.{svc}.Api - request failed\n"
                    f"{exc}: {r.choice(['boom', 'Connection is not available, request timed out after 30000ms.'])}\n"
                    f"{frames}")
        level = r.choice(["INFO"] * 8 + ["DEBUG", "WARN"])
        return (f"{self.stamp_iso()} {level} [{svc}-worker-{r.randint(1, 32)}] c.e.{svc}.Api - "
                f"handled {r.choice(PATHS)} in {r.randint(1, 900)} ms user={r.randint(1, 10**6)}\n")

    def syslog(self):
        r = self.r
        host = f"web-{r.randint(1, 9)}"
        if self.hit():
            return r.choice([
                f"{self.stamp_syslog()} {host} kernel: [{r.randint(1, 10**6)}.{r.randint(0, 999999):06d}] Out of memory: Killed process {r.randint(100, 99999)} (java) total-vm:{r.randint(10**6, 10**7)}kB, anon-rss:{r.randint(10**5, 10**6)}kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:{r.randint(100, 9999)}kB oom_score_adj:0\n",
                f"{self.stamp_syslog()} {host} sshd[{r.randint(100, 99999)}]: Failed password for invalid user admin from {self.ip()} port {r.randint(1024, 65535)} ssh2\n",
                f"{self.stamp_syslog()} {host} systemd[1]: nginx.service: Failed with result 'exit-code'.\n",
            ])
        return r.choice([
            f"{self.stamp_syslog()} {host} CRON[{r.randint(100, 99999)}]: (root) CMD (/usr/lib/php/sessionclean)\n",
            f"{self.stamp_syslog()} {host} sshd[{r.randint(100, 99999)}]: Accepted publickey for deploy from {self.ip()} port {r.randint(1024, 65535)} ssh2: ED25519 SHA256:{r.getrandbits(64):016x}\n",
            f"{self.stamp_syslog()} {host} systemd[1]: Started session-{r.randint(1, 9999)}.scope - Session of User deploy.\n",
            f"{self.stamp_syslog()} {host} kernel: [{r.randint(1, 10**6)}.{r.randint(0, 999999):06d}] eth0: link up, 10000 Mbps, full duplex\n",
        ])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="mixed", choices=["nginx", "nginx-error", "java", "syslog", "mixed"])
    ap.add_argument("--size", default="10M", help="bytes to write, with K/M/G suffixes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--match-rate", type=float, default=0.001)
    args = ap.parse_args()
    gen = Gen(args.seed, args.match_rate)
    kinds = {"nginx": [gen.nginx], "nginx-error": [gen.nginx_error], "java": [gen.java],
             "syslog": [gen.syslog],
             "mixed": [gen.nginx] * 6 + [gen.java] * 2 + [gen.nginx_error, gen.syslog]}[args.kind]
    target = parse_size(args.size)
    out = sys.stdout
    written = 0
    chunk = []
    chunk_bytes = 0
    pick = gen.r.choice
    # Stop at the first line that reaches `target` (the buffered chunk counts too, so that sizes
    # under one chunk are honoured): a prefix of a bigger log of the same seed.
    while written + chunk_bytes < target:
        line = pick(kinds)()
        chunk.append(line)
        chunk_bytes += len(line)
        if chunk_bytes >= 1 << 20:
            data = "".join(chunk)
            out.write(data)
            written += len(data.encode())
            chunk, chunk_bytes = [], 0
    if chunk:
        out.write("".join(chunk))
    out.flush()


if __name__ == "__main__":
    main()
