#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the
examples the tests and the demo use: the decision scenarios in
assets/scenarios/, the demo's proposals and database (crates/cli/src/demo.rs),
the connectors' unit tests and the MCP suite (tests/mcp/test_mcp.py).

Run it again when those examples change: `python3 fuzz/seeds.py`. It
replaces each target's corpus folder; the fuzz runs write what they find
elsewhere (scripts/fuzz.sh), so these stay small.
"""
import hashlib
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIOS = sorted(
    p for p in (ROOT / "assets/scenarios").glob("*.json") if not p.name.endswith(".expect.json")
)


def scenario(p):
    return json.loads(p.read_text())


# JSON's own tokens and values that tend to break readers, for every
# target's dictionary.
JSON_TOKENS = ['{', '}', '[', ']', ':', ',', '"', '\\', 'null', 'true', 'false', '-0', '1e400',
               '18446744073709551616', '-9223372036854775809', '0.1', '\\u0000', '\\ud800', '""']


def words(v, out):
    """Keys and short strings of a JSON value: the dictionary's words."""
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(json.dumps(k))
            words(x, out)
    elif isinstance(v, list):
        for x in v:
            words(x, out)
    elif isinstance(v, str) and len(v) <= 40:
        out.add(json.dumps(v))
        for part in v.replace(":", "/").split("/"):
            if part:
                out.add(part)


def write(target, items):
    """The target's corpus (fuzz/corpus/<target>/) and its libFuzzer
    dictionary (fuzz/dict/<target>.dict), replacing both."""
    out = ROOT / "fuzz/corpus" / target
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    seen = set()
    vocab = set(JSON_TOKENS)
    for name, data in items:
        if isinstance(data, (dict, list)):
            words(data, vocab)
            data = json.dumps(data, separators=(",", ":"))
        if isinstance(data, str):
            data = data.encode()
        for line in data.splitlines():
            try:
                words(json.loads(line), vocab)
            except ValueError:
                pass
        digest = hashlib.sha1(data).hexdigest()[:12]
        if digest in seen:
            continue
        seen.add(digest)
        (out / f"{name}-{digest}").write_bytes(data)
    d = ROOT / "fuzz/dict"
    d.mkdir(exist_ok=True)
    def entry(w):
        esc = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else
                      "".join(f"\\x{b:02x}" for b in c.encode()) for c in w)
        return f'"{esc}"'
    (d / f"{target}.dict").write_text("".join(entry(w) + "\n" for w in sorted(vocab) if len(w.encode()) <= 64))
    print(f"{target}: {len(seen)} seeds, {len(vocab)} dictionary words")


# 1. `recourse check`: every scenario file, as the tests read them.
write("check_input", [(p.stem, p.read_bytes()) for p in SCENARIOS])

# 2. POST /v1/writes: the scenarios' proposals (seed cases with a key), and
# the demo's connector proposals.
demo_writes = [
    {"intent": "delete the old demo project (run from the wrong directory)",
     "idempotency_key": "demo-wrong-dir",
     "action": {"connector": "fs", "op": "delete", "path": "/tmp/recourse-demo/home/dev"},
     "rollback": {"steps": [{"restores": ["fs:/tmp/recourse-demo/home/dev"],
                             "op": {"connector": "shell", "op": "exec", "cmd": "git checkout . && git stash pop"},
                             "requires": [{"id": "git-objects", "kind": "retained_log",
                                           "location": "fs:/tmp/recourse-demo/home/dev/app/.git"}]}]}},
    {"intent": "delete the old demo project", "idempotency_key": "demo-old-demo",
     "action": {"connector": "fs", "op": "delete", "path": "/tmp/recourse-demo/home/dev/projects/old-demo"}},
    {"intent": "tune the answer policy", "idempotency_key": "demo-prompt",
     "touches": ["sql:consult/system_prompts"],
     "action": {"connector": "sql", "database": "consult", "op": "update", "table": "system_prompts",
                "where": {"id": 1}, "set": {"body": "Answer quickly; sources optional."}}},
    {"intent": "fix a consultant's office", "idempotency_key": "demo-user",
     "action": {"connector": "sql", "database": "consult", "op": "update", "table": "users",
                "where": {"id": 2}, "set": {"office": "Washington"}}},
    {"intent": "bench", "idempotency_key": "/srv/x.txt",
     "action": {"connector": "fs", "op": "write", "path": "/srv/x.txt", "content_b64": "eA=="}},
]
write("write_body",
      [(p.stem, s["proposal"]) for p in SCENARIOS if p.name.startswith("seed_")
       for s in [scenario(p)]]
      + [(p.stem, scenario(p)["proposal"]) for p in SCENARIOS[:12]]
      + [(f"demo{i}", w) for i, w in enumerate(demo_writes)])

# 3. POST /v1/catalog: the scenarios' catalogs, and the demo's own entries.
demo_catalog = {"resources": [
    {"id": "fs:/tmp/recourse-demo/home/dev", "title": "a developer's home"},
    {"id": "fs:/tmp/recourse-demo/home/dev/app/.git", "title": "the production service's git history"},
    {"id": "sql:consult/system_prompts", "title": "the assistant's behaviour", "kind": "sql.table"},
    {"id": "answers:consultants", "title": "answers already given", "reach": "external", "bearer": "employee"},
    {"id": "vault:market", "probe_prefix": "http://127.0.0.1:9/"}],
    "edges": [{"from": "sql:consult/system_prompts", "to": "answers:consultants", "why": "every answer follows this prompt"}]}
write("catalog_body",
      [(p.stem, scenario(p)["catalog"]) for p in SCENARIOS if p.name.startswith(("seed_", "fs_", "cycle"))]
      + [("demo", demo_catalog)])

# 4. MCP: JSON-RPC lines as an agent sends them (tests/mcp/test_mcp.py).
def rpc(i, method, params=None):
    m = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        m["params"] = params
    return json.dumps(m)


def call(i, name, args):
    return rpc(i, "tools/call", {"name": name, "arguments": args})


init = rpc(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "fuzz", "version": "0"}})
initialized = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
calls = [
    call(1, "fs_delete", {"path": "/srv/proj", "intent": "remove the scratch project"}),
    call(2, "fs_write", {"path": "/srv/a.txt", "content": "hi", "intent": "write"}),
    call(3, "fs_write", {"path": "/srv/a.txt", "content_b64": "aGk=", "intent": "write", "idempotency_key": "k1"}),
    call(4, "fs_move", {"path": "/srv/a", "to": "/srv/b", "intent": "rename"}),
    call(5, "sql_update", {"database": "consult", "table": "users", "where": {"id": 2},
                           "set": {"office": "Washington"}, "intent": "fix an office"}),
    call(6, "sql_delete", {"database": "main", "table": "users", "where": {"id": 1}, "intent": "drop"}),
    call(7, "sql_insert", {"database": "main", "table": "users", "values": [{"id": 7, "name": "eve"}], "intent": "add"}),
    call(8, "http_request", {"method": "POST", "url": "https://market.internal/accounts/4411/close", "intent": "close",
                             "compensation": {"method": "POST", "url": "https://market.internal/accounts/4411/reopen"},
                             "check": {"url": "https://market.internal/snapshots/4411", "method": "GET"}}),
    call(9, "write_status", {"id": "w-123", "wait_s": 0}),
    call(10, "explain", {"tool": "fs_delete", "arguments": {"path": "/srv/keep", "intent": "tidy"}}),
    call(11, "explain", {"tool": "fs_delete", "arguments": {"intent": "x"}}),
    call(12, "fs_delete", {"path": 3, "intent": "x"}),
    call(13, "nope", {}),
]
write("mcp_message",
      [("init", init + "\n" + initialized), ("list", rpc(1, "tools/list")), ("ping", rpc("p", "ping")),
       ("session", "\n".join([init, initialized, rpc(100, "tools/list")] + calls[:3])),
       ("invalid", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":7}'),
       ("garbage", "not json\n{\"jsonrpc\":\"2.0\"}")]
      + [(f"call{i}", c) for i, c in enumerate(calls)])

# 5. The fs connector: actions on the fuzz target's tree (`@R` is its root;
# see fuzz_targets/fs_plan.rs), as the connector's tests write them.
fs = [
    {"connector": "fs", "op": "delete", "path": "@R/a.txt"},
    {"connector": "fs", "op": "delete", "path": "@R/dir"},
    {"connector": "fs", "op": "delete", "path": "@R/dir/.git"},
    {"connector": "fs", "op": "write", "path": "@R/new.txt", "content_b64": "aGk="},
    {"connector": "fs", "op": "write", "path": "@R/dir/sub/c.txt", "content_b64": ""},
    {"connector": "fs", "op": "move", "path": "@R/a.txt", "to": "@S/a.txt"},
    {"connector": "fs", "op": "move", "path": "@R/dir/b.txt", "to": "@R/empty/b.txt"},
    {"connector": "fs", "op": "delete", "path": "@R/out/secret.txt"},
    {"connector": "fs", "op": "write", "path": "@R/in/b.txt", "content_b64": "eA=="},
    {"connector": "fs", "op": "write", "path": "@R/rel", "content_b64": "eA=="},
    {"connector": "fs", "op": "delete", "path": "@R/hard1"},
    {"connector": "fs", "op": "write", "path": "@R/sock", "content_b64": "eA=="},
    {"connector": "fs", "op": "delete", "path": "@R/../outside/secret.txt"},
    {"connector": "fs", "op": "delete", "path": "@V/w-1"},
    {"connector": "fs", "op": "delete", "path": "@R"},
    {"connector": "fs", "op": "delete", "path": "@O/secret.txt"},
    {"connector": "fs", "op": "move", "path": "@R/dir", "to": "@R/dir/sub/x"},
    {"connector": "fs", "op": "delete", "path": "/r/a", "recursive": True},
    {"connector": "fs", "op": "write", "path": "/r/a", "content_b64": {"redacted": True, "sha256": "ab", "bytes": 2}},
    {"connector": "sql", "op": "delete", "path": "/a"},
]
write("fs_plan", [(f"{a['op']}{i}", a) for i, a in enumerate(fs)]
      + [("names", ["@R", "@S", "@V", "@O", "/..", "/.", "//", "\u0000", "dir/sub", ".git", ".env",
                    "a.txt", "out", "in", "rel", "dangling", "sock", "hard1", "hard2", "empty"])])

# 6. The sql connector: actions from its tests (database `main`), the demo
# (`consult`) and the end-to-end suite.
sql = [
    {"connector": "sql", "database": "main", "op": "update", "table": "users",
     "where": {"id": 1}, "set": {"name": "ada lovelace", "score": 1.25, "bio": None}},
    {"connector": "sql", "database": "main", "op": "delete", "table": "users", "where": {"id": 1}},
    {"connector": "sql", "database": "main", "op": "insert", "table": "users",
     "values": [{"id": 7, "name": "eve", "score": 2.5}, {"id": 8, "name": "mal", "bio": "x"}]},
    {"connector": "sql", "database": "main", "op": "insert", "table": "notes", "values": {"body": "new", "user_id": 2}},
    {"connector": "sql", "database": "main", "op": "update", "table": "orders", "where": {"user_id": 1}, "set": {"total": 0}},
    {"connector": "sql", "database": "main", "op": "delete", "table": "tags", "where": {"code": "b"}},
    {"connector": "sql", "database": "main", "op": "update", "table": "tags", "where": {"code": "a"}, "set": {"label": "x"}},
    {"connector": "sql", "database": "main", "op": "update", "table": "users", "where": {"id": 1}, "set": {"id": 9}},
    {"connector": "sql", "database": "main", "op": "update", "table": "users", "where": {}, "set": {"name": "x"}},
    {"connector": "sql", "database": "main", "op": "delete", "table": "loose", "where": {"a": 1}},
    {"connector": "sql", "database": "main", "op": "delete", "table": "pairs", "where": {"a": 1, "b": "a"}},
    {"connector": "sql", "database": "main", "op": "update", "table": "odd name", "where": {"a col": 1}, "set": {"b\"q": "z"}},
    {"connector": "sql", "database": "main", "op": "merge", "table": "users"},
    {"connector": "sql", "database": "main", "op": "insert", "table": "users", "values": []},
    {"connector": "sql", "database": "main", "op": "insert", "table": "users", "values": [{"id": 5, "name": "a"}, {"nick": "b"}]},
    {"connector": "sql", "database": "main", "op": "raw", "sql": "DELETE FROM users"},
    {"connector": "sql", "database": "consult", "op": "update", "table": "system_prompts",
     "where": {"id": 1}, "set": {"body": "Answer quickly; sources optional."}},
    {"connector": "sql", "database": "consult", "op": "update", "table": "users", "where": {"id": 2}, "set": {"office": "Washington"}},
    {"connector": "sql", "database": "nope", "op": "delete", "table": "users", "where": {"id": 1}},
    {"connector": "sql", "database": "main", "op": "delete", "table": "recourse_applied", "where": {"write_id": "w"}},
]
write("sql_plan", [(f"{a.get('op')}{i}", a) for i, a in enumerate(sql)])
