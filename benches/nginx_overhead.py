#!/usr/bin/env python3
"""Latency and throughput cost of aiproxy inside NGINX (run by nginx_overhead.sh).

One NGINX (the example configuration, one worker) serves two servers on 127.0.0.1 that reach the
same upstream in the same run: ``with_aiproxy`` (the Lua content handler: the client speaks
OpenAI, aiproxy translates for provider ``openai`` and talks to the upstream over a pooled
cosocket) and ``plain_proxy`` (no Lua phase at all: ``proxy_pass`` to the same upstream with a
keepalive pool; the client sends the same body straight through). The upstream is a second NGINX
answering every request with a chat completion captured from the mock provider, so it adds almost
nothing and its CPU is not counted.

wrk drives a non-streamed chat completion; rounds alternate between the two servers. Output: a
Markdown table with p50, p99, requests/s and proxy CPU per request, and the medians' difference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
for _p in (REPO / "benches", REPO / "tests" / "e2e" / "nginx", REPO / "tests"):
    sys.path.insert(0, str(_p))

from envoy_overhead import CONFIG, REQUEST, Result, cpu_seconds, parse_wrk, post, run_wrk  # noqa: E402
from mock_provider import start_mock  # noqa: E402
from nginx_harness import NginxProcess, find_nginx, free_ports, library  # noqa: E402

NAMES: Final = ("plain_proxy", "with_aiproxy")


def nginx_string(text: str) -> str:
    if "$" in text:
        raise ValueError("the canned reply must not contain '$' (an NGINX variable)")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_upstream(nginx: Path, workdir: Path, reply: bytes, port: int) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "upstream.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {workdir}/upstream.pid; error_log {workdir}/upstream.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ access_log off; client_body_temp_path {workdir}/ub; keepalive_requests 100000;\n"
        f"  server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json;\n"
        f"    return 200 {nginx_string(reply.decode())}; }} }} }}\n"
    )
    return subprocess.Popen([str(nginx), "-p", str(workdir), "-c", str(conf)])  # noqa: S603 - fixed argv


def plain_server(port: int, upstream_port: int) -> str:
    return f"""
    upstream bench_upstream {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    duration = min(args.duration, 60.0)
    wrk = shutil.which("wrk")
    nginx = find_nginx()
    if wrk is None or nginx is None:
        raise SystemExit("wrk and nginx are required (see nginx_overhead.sh)")

    body = json.dumps(REQUEST).encode()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="aiproxy-nginx-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        script = workdir / "chat.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Bearer client-key"\n'
        )
        with start_mock() as mock:
            status, reply = post(f"{mock.base_url}/v1/chat/completions", body)
            assert status == 200, reply
        upstream_port, plain_port = free_ports(2)
        upstream = start_upstream(nginx, workdir / "upstream", reply, upstream_port)
        proxy = NginxProcess(
            nginx,
            workdir / "proxy",
            {"with_aiproxy": json.dumps(CONFIG)},
            upstream=f"127.0.0.1:{upstream_port}",
            workers=1,
            lib=library(),
            extra_http=plain_server(plain_port, upstream_port),
        )
        try:
            proxy.start()
            time.sleep(0.3)
            urls = {
                "plain_proxy": f"http://127.0.0.1:{plain_port}/v1/chat/completions",
                "with_aiproxy": f"http://127.0.0.1:{proxy.ports['with_aiproxy']}/v1/chat/completions",
            }
            for name, url in urls.items():
                status, answer = post(url, body)
                assert status == 200 and json.loads(answer)["object"] == "chat.completion", (name, answer[:300])
                run_wrk(wrk, url, script, args, args.warmup)
            (worker,) = proxy.worker_pids()
            for round_no in range(1, args.rounds + 1):
                for name, url in urls.items():
                    before = cpu_seconds(worker)
                    output = run_wrk(wrk, url, script, args, duration)
                    results.append(parse_wrk(name, round_no, output, cpu_seconds(worker) - before))
        finally:
            proxy.stop()
            upstream.terminate()
            upstream.wait(timeout=10)

    print(f"\nwrk -t{args.threads} -c{args.connections} -d{duration:g}s, {args.rounds} alternating rounds; "
          f"NGINX 1 worker; non-streamed chat completion ({len(body)} B request).\n")
    print("| server | round | p50 (ms) | p99 (ms) | requests/s | worker CPU/request (µs) | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.listener} | {r.round} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.rps:.0f} | {r.cpu_us:.1f} | {r.errors} |")
    med = {
        name: {
            key: statistics.median(getattr(r, attr) for r in results if r.listener == name)
            for key, attr in (("p50", "p50_ms"), ("p99", "p99_ms"), ("rps", "rps"), ("cpu", "cpu_us"))
        }
        for name in NAMES
    }
    base, mine = med["plain_proxy"], med["with_aiproxy"]
    print("\n| median of rounds | p50 (ms) | p99 (ms) | requests/s | worker CPU/request (µs) |")
    print("|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['p50']:.3f} | {m['p99']:.3f} | {m['rps']:.0f} | {m['cpu']:.1f} |")
    print(
        f"| difference | {mine['p50'] - base['p50']:+.3f} | {mine['p99'] - base['p99']:+.3f} | "
        f"{(mine['rps'] / base['rps'] - 1) * 100:+.1f}% | {mine['cpu'] - base['cpu']:+.1f} |"
    )
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
