#!/usr/bin/env python3
"""Latency and throughput cost of the aiproxy module inside Envoy 1.40 (run by envoy_overhead.sh).

One Envoy (the example configuration, clusters pointed at the upstream) serves two listeners on
127.0.0.1 that differ only in the aiproxy filter: ``with_module`` (aiproxy + router; the client
speaks OpenAI, the filter translates for provider ``openai``) and ``without_module`` (router only;
the client sends the same body straight through). Both reach the same upstream in the same run:

* ``static`` (default): a second Envoy answering every request with a chat completion captured
  from the mock provider (``direct_response``), so the upstream adds almost nothing;
* ``mock``: the Python mock provider itself (slower, noisier upstream).

wrk drives a non-streamed chat completion; rounds alternate between the two listeners. Output: a
Markdown table with p50, p99 and requests/s per listener and round, and the medians' difference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e" / "envoy"))
sys.path.insert(0, str(REPO / "tests"))

from envoy_harness import EnvoyProcess, envoy_config, find_envoy  # noqa: E402
from mock_provider import start_mock  # noqa: E402

REQUEST: Final = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello! How are you today?"},
    ],
}
CONFIG: Final = {"provider": {"type": "openai", "apiTokens": ["sk-bench-not-secret"]}}


@dataclass(frozen=True)
class Result:
    listener: str
    round: int
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    cpu_us: float  # proxy Envoy CPU time (user + system) per request


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not match:
        raise ValueError(f"unexpected wrk latency {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def parse_wrk(listener: str, round_no: int, output: str, cpu: float) -> Result:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+(\S+)", output, re.M)
        if not match:
            raise ValueError(f"no {pct}% latency in wrk output:\n{output}")
        return to_ms(match.group(1))

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    total_errors = int(errors.group(1)) if errors else 0
    if socket_errors:
        total_errors += sum(int(g) for g in socket_errors.groups())
    requests = re.search(r"^\s*(\d+) requests in", output, re.M)
    if not rps or not requests:
        raise ValueError(f"no request count in wrk output:\n{output}")
    count = max(1, int(requests.group(1)))
    return Result(listener, round_no, latency("50"), latency("99"), float(rps.group(1)), total_errors, cpu / count * 1e6)


def static_upstream_config(body: bytes) -> dict[str, Any]:
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": body.decode()}},
        "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}],
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "upstream",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "upstream",
                                        "route_config": {
                                            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http."
                                                    "router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    }


def proxy_config(upstream_port: int) -> dict[str, Any]:
    rendered = envoy_config.render(json.dumps(CONFIG), listen_port=0, admin_port=0)
    config = envoy_config.route_to_mock(envoy_config.load(rendered), upstream_port)
    config = envoy_config.with_listeners(config, {"with_module": json.dumps(CONFIG), "without_module": json.dumps(CONFIG)})
    without = next(l for l in config["static_resources"]["listeners"] if l["name"] == "without_module")
    filters = envoy_config.http_filters(without)
    filters[:] = [f for f in filters if f["name"] != envoy_config.FILTER_NAME]
    return config


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        return int(response.status), response.read()


def run_wrk(wrk: str, url: str, script: Path, args: argparse.Namespace, duration: float) -> str:
    command = [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration:g}s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=True)
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module-dir", type=Path, default=REPO / "target" / "release")
    parser.add_argument("--upstream", choices=("static", "mock"), default="static")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (max 60)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads of the proxy")
    args = parser.parse_args(argv)
    duration = min(args.duration, 60.0)
    wrk = shutil.which("wrk")
    envoy_bin = find_envoy()
    if wrk is None or envoy_bin is None:
        raise SystemExit("wrk and the Envoy binary are required (see envoy_overhead.sh)")

    body = json.dumps(REQUEST).encode()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="aiproxy-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "chat.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Bearer client-key"\n'
        )
        mock = start_mock()
        upstream_envoy: EnvoyProcess | None = None
        proxy: EnvoyProcess | None = None
        try:
            upstream_port = mock.port
            if args.upstream == "static":
                status, reply = post(f"{mock.base_url}/v1/chat/completions", body)
                assert status == 200, reply
                (workdir / "upstream").mkdir()
                upstream_envoy = EnvoyProcess(
                    envoy_bin, args.module_dir, workdir / "upstream", static_upstream_config(reply), concurrency=1
                ).start()
                upstream_port = upstream_envoy.ports["upstream"]
            (workdir / "proxy").mkdir()
            proxy = EnvoyProcess(
                envoy_bin, args.module_dir, workdir / "proxy", proxy_config(upstream_port), concurrency=args.concurrency
            ).start()
            urls = {name: f"http://127.0.0.1:{proxy.ports[name]}/v1/chat/completions" for name in ("without_module", "with_module")}
            for name, url in urls.items():
                status, reply = post(url, body)
                assert status == 200 and json.loads(reply)["object"] == "chat.completion", (name, reply[:300])
                run_wrk(wrk, url, script, args, args.warmup)
            assert proxy.proc is not None
            for round_no in range(1, args.rounds + 1):
                for name, url in urls.items():
                    before = cpu_seconds(proxy.proc.pid)
                    output = run_wrk(wrk, url, script, args, duration)
                    cpu = cpu_seconds(proxy.proc.pid) - before
                    results.append(parse_wrk(name, round_no, output, cpu))
        finally:
            for process in (proxy, upstream_envoy):
                if process is not None:
                    process.stop()
            mock.close()

    print(f"\nUpstream: {args.upstream}; wrk -t{args.threads} -c{args.connections} -d{duration:g}s, "
          f"{args.rounds} alternating rounds; Envoy --concurrency {args.concurrency}; "
          f"non-streamed chat completion ({len(body)} B request).\n")
    print("| listener | round | p50 (ms) | p99 (ms) | requests/s | proxy CPU/request (µs) | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.listener} | {r.round} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.rps:.0f} | {r.cpu_us:.1f} | {r.errors} |")
    med: dict[str, dict[str, float]] = {}
    for name in ("without_module", "with_module"):
        mine = [r for r in results if r.listener == name]
        med[name] = {
            "p50": statistics.median(r.p50_ms for r in mine),
            "p99": statistics.median(r.p99_ms for r in mine),
            "rps": statistics.median(r.rps for r in mine),
            "cpu": statistics.median(r.cpu_us for r in mine),
        }
    base, module = med["without_module"], med["with_module"]
    print("\n| median of rounds | p50 (ms) | p99 (ms) | requests/s | proxy CPU/request (µs) |")
    print("|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['p50']:.3f} | {m['p99']:.3f} | {m['rps']:.0f} | {m['cpu']:.1f} |")
    print(
        f"| difference | {module['p50'] - base['p50']:+.3f} | {module['p99'] - base['p99']:+.3f} | "
        f"{(module['rps'] / base['rps'] - 1) * 100:+.1f}% | {module['cpu'] - base['cpu']:+.1f} |"
    )
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
