#!/usr/bin/env python3
"""Peers end to end (issue 13): the Python aiohttp example proxy (examples/python, on the ctypes
binding) against the LiteLLM proxy server, and the Go example proxy (examples/go, on the cgo
binding) against it too. Same mock upstream for all (benches/upstream, Go: canned OpenAI and
Anthropic answers; streams in one write, or one event per write with --trickle), same OpenAI chat
request, wrk at a fixed concurrency, buffered and streamed; prints requests/s, p50 and p99.

Run by benches/peers.sh, which builds what is needed and makes the LiteLLM venv. Bifrost (the Go
gateway) is not served by the Go module proxy here, so it is not measured.
Everything listens on 127.0.0.1; every process is stopped at the end.
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
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benches" / "envoy"))
import perf_compare as pc  # noqa: E402  (canned bodies, wrk parsing, the Go mock's start)

TOKEN: Final = "sk-bench-not-secret"


def wait_port_line(proc: subprocess.Popen[str], what: str, deadline: float) -> int:
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited before listening")
            continue
        if m := re.match(r"LISTENING (\d+)", line):
            return int(m.group(1))
    raise SystemExit(f"{what} did not listen in time")


def wait_http(url: str, deadline: float, proc: subprocess.Popen[str], what: str) -> None:
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited during start")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{what} did not answer {url} in time")


def check(port: int, name: str, stream: bool) -> str:
    """One request: '' when the answer is OpenAI's shape with the canned text."""
    body = json.dumps({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body.encode(),
                                 headers={"content-type": "application/json", "authorization": "Bearer client-key"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
    except (OSError, urllib.error.HTTPError) as e:
        return f"{name}: {e}"
    if stream:
        chunks = [json.loads(line[5:]) for line in text.splitlines()
                  if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")]
        got = "".join((c.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for c in chunks)
    else:
        got = json.loads(text)["choices"][0]["message"]["content"]
    return "" if got.strip() == pc.TEXT.strip() else f"{name}: unexpected answer {text[:160]!r}"


def wrk(port: int, stream: bool, seconds: int, conns: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"wrk-{stream}.lua"
    body = json.dumps({"model": "gpt-4o-mini", "stream": stream, "max_tokens": 256, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello! Tell me a short story about a fox and a dog."}]})
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n'
                      'wrk.headers["Authorization"] = "Bearer client-key"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}/v1/chat/completions"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    try:
        errs = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
            errs += sum(map(int, m.groups()))
        return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                "p50": pc.to_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
                "p99": pc.to_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
                "errors": errs}
    except AttributeError:
        raise SystemExit(f"cannot parse wrk output:\n{out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8, help="wrk concurrency (fixed for every proxy)")
    ap.add_argument("--provider", default="openai", choices=("openai", "claude"))
    ap.add_argument("--trickle", action="store_true", help="the mock sends streams one event per write")
    ap.add_argument("--litellm-venv", type=Path, default=REPO / ".venv-peers")
    ap.add_argument("--python", type=Path, default=REPO / ".venv" / "bin" / "python")
    ap.add_argument("--go-proxy", type=Path, required=True, help="the built examples/go binary")
    ap.add_argument("--only", help="comma list of aiohttp,litellm,go")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="peers-"))
    procs: list[subprocess.Popen[str]] = []
    results: dict[tuple[str, bool], list[dict[str, float]]] = {}
    try:
        up = pc.start_upstream(workdir)
        if up is None:
            raise SystemExit("cannot build benches/upstream: go not found")
        upstream, up_port = up
        procs.append(upstream)
        if args.trickle:  # restart it trickling every stream
            upstream.kill()
            upstream.wait()
            upstream = subprocess.Popen([str(workdir / "upstream"), "-dir", str(workdir), "-trickle"],
                                        stdout=subprocess.PIPE, text=True)
            procs.append(upstream)
            up_port = wait_port_line(upstream, "upstream", time.time() + 30)
        override = f"127.0.0.1:{up_port}"
        cfg = json.dumps({"provider": {"type": args.provider, "apiTokens": [TOKEN],
                                       "modelMapping": {"gpt-4o*": "mapped-model"}}})
        (workdir / "provider.json").write_text(cfg)
        ports: dict[str, int] = {}
        only = set(args.only.split(",")) if args.only else {"aiohttp", "litellm", "go"}

        if "aiohttp" in only:
            env = dict(os.environ, PYTHONPATH=str(REPO / "bindings" / "python"),
                       AIPROXY_LIB=str(REPO / "target" / "release" / "libaiproxy.so"))
            p = subprocess.Popen([str(args.python), str(REPO / "examples" / "python" / "proxy.py"), "--config-json", cfg,
                                  "--port", "0", "--upstream-override", override, "--upstream-scheme", "http"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            procs.append(p)
            ports["aiohttp (aiproxy)"] = wait_port_line(p, "aiohttp example proxy", time.time() + 60)
        if "go" in only:
            p = subprocess.Popen([str(args.go_proxy), "-config", str(workdir / "provider.json"), "-listen", "127.0.0.1:0",
                                  "-upstream-override", override], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
            procs.append(p)
            ports["go (aiproxy)"] = wait_port_line(p, "Go example proxy", time.time() + 60)
        if "litellm" in only:
            port = pc.free_port()
            model = ({"model": "openai/mapped-model", "api_base": f"http://{override}/v1"} if args.provider == "openai"
                     else {"model": "anthropic/mapped-model", "api_base": f"http://{override}"})
            (workdir / "litellm.yaml").write_text(json.dumps({
                "model_list": [{"model_name": "gpt-4o-mini", "litellm_params": dict(model, api_key=TOKEN)}],
                "litellm_settings": {"telemetry": False, "drop_params": True, "set_verbose": False},
                # no master key: LiteLLM does no client auth, like the aiproxy examples
                "general_settings": {"dangerously_permit_weak_or_unset_master_key": True}}))
            env = dict(os.environ, LITELLM_TELEMETRY="False", LITELLM_LOG="ERROR", NO_DOCS="True", LITELLM_LOCAL_MODEL_COST_MAP="True",
                       DISABLE_ADMIN_UI="True")
            p = subprocess.Popen([str(args.litellm_venv / "bin" / "litellm"), "--config", str(workdir / "litellm.yaml"),
                                  "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                                 stdout=subprocess.DEVNULL, stderr=open(workdir / "litellm.log", "w"), text=True,
                                 env=env)
            procs.append(p)
            wait_http(f"http://127.0.0.1:{port}/health/liveliness", time.time() + 600, p, "LiteLLM proxy")
            ports["litellm proxy"] = port

        for name, port in ports.items():
            for stream in (False, True):
                if problem := check(port, name, stream):
                    raise SystemExit(f"check failed: {problem}")
            print(f"check {name}: OK", flush=True)
        for name, port in ports.items():  # warm-up
            for stream in (False, True):
                wrk(port, stream, 1, args.connections, workdir)
        for r in range(args.rounds):
            names = list(ports)
            names = names[r % len(names):] + names[:r % len(names)]
            for name in names:
                for stream in (False, True):
                    results.setdefault((name, stream), []).append(
                        wrk(ports[name], stream, args.duration, args.connections, workdir))
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(workdir, ignore_errors=True) if not os.environ.get("PEERS_KEEP") else print(f"kept {workdir}")

    print(f"\nprovider {args.provider}; mock upstream benches/upstream (Go), streams "
          f"{'one event per write' if args.trickle else 'in one write'} (~50 events); wrk -t1 -c{args.connections}, "
          f"{args.duration} s x {args.rounds} rotated rounds, medians; load average {os.getloadavg()[0]:.1f}.\n")
    print("| proxy | mode | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for stream in (False, True):
        for name in ports:
            runs = results[(name, stream)]
            med = {k: statistics.median(x[k] for x in runs) for k in ("rps", "p50", "p99")}
            print(f"| {name} | {'streamed' if stream else 'buffered'} | {med['rps']:.0f} | {med['p50']:.2f} | "
                  f"{med['p99']:.2f} | {sum(int(x['errors']) for x in runs)} |")
    print("\nBifrost (maximhq/bifrost) is not measured: it is not served by the Go module proxy here.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
