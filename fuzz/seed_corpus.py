#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the fixtures the tests use.

Sources: the string constants, byte strings and `json!(...)` literals in the test sections of
src/providers/ (files and folders), src/sse.rs, src/config_tests.rs and src/exchange_tests.rs, and
tests/fixtures/seed_configs/*.json. Each fixture gets the control bytes its target expects in
front (see fuzz/fuzz_targets/common/mod.rs for the framing). Re-run after fixtures change:

    python3 fuzz/seed_corpus.py
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"
MAX_BYTES = 8192

# Indexes into common::CONFIGS.
CFG = {
    "openai": 0, "azure": 1, "moonshot": 2, "qwen": 3, "baichuan": 4, "yi": 5, "zhipuai": 6,
    "deepseek": 7, "groq": 8, "baidu": 9, "ai360": 10, "mistral": 11, "minimax": 12,
    "claude": 13, "ollama": 14, "hunyuan": 15, "stepfun": 16, "cloudflare": 17, "spark": 18,
    "gemini": 19, "deepl": 20, "qwen_context": 21, "qwen_files": 22, "moonshot_file": 23,
    "minimax_pro": 24, "openai_custom": 25, "claude_settings": 26, "gemini_original": 27,
    "openai_mapping": 28,
}
# Which configurations a source's fixtures are fed to (by provider file or folder name).
FILE_CONFIGS = {
    "claude": ["claude", "claude_settings"],
    "gemini": ["gemini"],
    "hunyuan": ["hunyuan"],
    "minimax": ["minimax_pro", "minimax"],
    "qwen": ["qwen", "qwen_context", "qwen_files"],
    "deepl": ["deepl"],
    "moonshot": ["moonshot", "moonshot_file"],
    "openai_compat_tests": ["openai", "azure", "moonshot", "spark", "cloudflare", "baidu",
                            "groq", "ai360", "minimax"],
    "sse": ["claude", "openai"],
}
# response target: status indexes (common STATUS table) and content-type indexes.
STATUS_200, STATUS_400, STATUS_429, STATUS_500 = 0, 6, 10, 11
CT_SSE, CT_JSON = 0, 1


def rust_unescape(s: str) -> str:
    """Decodes the escapes of a non-raw Rust string literal body."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        if n == "\n":  # line continuation: skip the newline and leading whitespace
            i += 2
            while i < len(s) and s[i] in " \t\n\r":
                i += 1
            continue
        simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n == "x":
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        elif n == "u":
            end = s.index("}", i)
            out.append(chr(int(s[i + 3:end], 16)))
            i = end + 1
        else:
            raise ValueError(f"escape \\{n}")
    return "".join(out)


def literals(src: str) -> list[str]:
    """Every string literal of Rust source, decoded, plus the text of each json!(...)."""
    found: list[str] = []
    i = 0
    while i < len(src):
        if src.startswith("//", i):
            i = src.find("\n", i) + 1 or len(src)
            continue
        if src.startswith("/*", i):
            i = src.find("*/", i) + 2
            continue
        if src.startswith("json!(", i):
            start = j = i + len("json!(")
            depth = 1
            while j < len(src) and depth:
                if src[j] == '"':
                    j += 1
                    while src[j] != '"':
                        j += 2 if src[j] == "\\" else 1
                elif src[j] in "([{":
                    depth += 1
                elif src[j] in ")]}":
                    depth -= 1
                j += 1
            text = re.sub(r",(\s*[}\]])", r"\1", src[start:j - 1])
            try:
                json.loads(text)
                found.append(text)
            except ValueError:
                pass
            i += len("json!(")  # literals inside are picked up too; harmless
            continue
        m = re.match(r'b?r(#*)"', src[i:])
        if m and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = m.group(1)
            end = src.index('"' + hashes, i + m.end())
            found.append(src[i + m.end():end])
            i = end + 1 + len(hashes)
            continue
        if src[i] == "'":
            if src.startswith("'\\", i):
                i = src.index("'", i + 2) + 1
            elif i + 2 < len(src) and src[i + 2] == "'":
                i += 3
            else:
                i += 1  # a lifetime
            continue
        if src[i] == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            try:
                found.append(rust_unescape(src[i + 1:j]))
            except (ValueError, IndexError):
                pass
            i = j + 1
            continue
        i += 1
    return found


def test_section(path: Path) -> str:
    text = path.read_text()
    if path.name == "tests.rs" or path.name.endswith("_tests.rs"):
        return text
    m = re.search(r"^\s*mod tests \{", text, re.M)
    return text[m.start():] if m else ""


def is_stream(s: str) -> bool:
    return bool(re.search(r"(^|\n)(data|event|id):", s)) and "\n" in s


class Writer:
    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.counts: dict[str, int] = {}

    def put(self, target: str, data: bytes) -> None:
        if len(data) > MAX_BYTES or data in self.seen:
            return
        self.seen.add(data)
        d = OUT / target
        d.mkdir(parents=True, exist_ok=True)
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        (d / name).write_bytes(data)
        self.counts[target] = self.counts.get(target, 0) + 1


def main() -> None:
    for t in ("config", "request", "response", "sse"):
        shutil.rmtree(OUT / t, ignore_errors=True)
    w = Writer()
    providers = ROOT / "src" / "providers"
    sources = sorted(providers.rglob("*.rs")) + [
        ROOT / "src" / n for n in ("sse.rs", "config_tests.rs", "exchange_tests.rs")]
    for path in sources:
        name = path.parent.name if path.parent != providers and path.parent.parent == providers \
            else path.stem
        cfgs = [CFG[c] for c in FILE_CONFIGS.get(name, ["openai"])]
        for n, lit in enumerate(literals(test_section(path))):
            raw = lit.encode()
            if is_stream(lit):
                for k, cfg in enumerate(cfgs[:3]):
                    # stream + include_usage, SSE content type, 200; varied split seeds.
                    w.put("response", bytes([cfg, 0b11 | CT_SSE << 3, STATUS_200, (n + k) % 256]) + raw)
                w.put("sse", bytes([0, n % 256]) + raw)
                w.put("sse", bytes([40, (n + 1) % 256]) + raw)
                continue
            try:
                v = json.loads(lit)
            except ValueError:
                continue
            if not isinstance(v, dict):
                continue
            if "provider" in v:
                w.put("config", raw)
                p = v["provider"]
                if isinstance(p, dict) and p.get("type") in CFG:
                    fields = {k: x for k, x in p.items() if k != "type"}
                    w.put("config", bytes([CFG[p["type"]], 0]) + json.dumps(fields).encode())
                continue
            if "model" in v and ("messages" in v or "input" in v):
                flags = 1 << 2 if "input" in v else 0
                w.put("request", bytes([cfgs[n % len(cfgs)], flags, 0]) + raw)
                continue
            embeddings = any(k in lit for k in ('"embedding"', '"Embeddings"', '"Embedding"'))
            error = any(k in lit for k in ('"error"', '"Error"'))
            # One configuration per fixture, rotating through the file's list, keeps the corpus
            # small; the fuzzer moves fixtures between configurations itself.
            cfg = cfgs[n % len(cfgs)]
            flags = (1 << 2 if embeddings else 0) | CT_JSON << 3
            status = [STATUS_400, STATUS_500, STATUS_429][n % 3] if error else STATUS_200
            w.put("response", bytes([cfg, flags, status, n % 256]) + raw)
            if not embeddings and not error and n % 2 == 0:
                # The same body to a stream request (providers without streaming).
                w.put("response", bytes([cfg, flags | 1, STATUS_200, n % 256]) + raw)
    for path in sorted((ROOT / "tests" / "fixtures" / "seed_configs").glob("*.json")):
        raw = path.read_bytes().strip()
        w.put("config", raw)
        p = json.loads(raw)["provider"]
        fields = {k: x for k, x in p.items() if k != "type"}
        w.put("config", bytes([CFG[p["type"]], 0]) + json.dumps(fields).encode())
    # Requests that reach the other paths: passthrough, custom path/headers, callout answers.
    chat = b'{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"stream":true}'
    sep = b"\xfe\xff"
    for cfg in range(29):
        w.put("request", bytes([cfg, 0, 0]) + chat)
    w.put("request", bytes([CFG["qwen_context"], 0, 4]) + chat)
    w.put("request", bytes([CFG["moonshot_file"], 0, 0]) + chat + sep + sep + sep
          + b'{"content":"file text","file_type":"application/pdf"}')
    w.put("request", bytes([CFG["hunyuan"], 7 << 2 | 2, 0]) + b"" + sep
          + b"/v1/models?x=1" + sep + b"x-custom: 1\ncontent-encoding: identity")
    w.put("request", bytes([CFG["openai"], 1 << 5, 0]) + chat)
    # Hand-written SSE edge cases: CR, CRLF split, comments, event without data, no final blank.
    for s in (b"data: a\r\rdata: b\r\n\r\n:c\n\nevent: e\n\ndata", b"data:x\ndata:y\n\nid: 1\nretry: 5\n\n"):
        w.put("sse", bytes([0, 3]) + s)
        w.put("sse", bytes([2, 0]) + s)
    for t, n in sorted(w.counts.items()):
        print(f"{t}: {n} seeds")


if __name__ == "__main__":
    main()
