"""The gate as an MCP server, driven by the official MCP Python SDK.

Each test runs twice: over stdio (`recourse mcp --gate URL` with the agent's
token) and over streamable HTTP (`/mcp` on `recourse serve`, the token as
the bearer). The gate is a real `recourse serve` process with one fs root.
Run through tests/mcp/run.sh, which builds the binary and the venv.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import tempfile
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

BIN = os.environ.get("RECOURSE_BIN") or str(Path(__file__).resolve().parents[2] / "target" / "debug" / "recourse")
TRANSPORTS = ["stdio", "http"]


class Gate:
    """One `recourse serve` with tokens for each role, one fs root and one
    SQLite database (`shop`)."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="recourse-mcp-")
        base = Path(self.tmp.name)
        self.data = base / "data"
        self.root = (base / "root").resolve()
        self.data.mkdir()
        self.root.mkdir()
        self.db = base / "shop.db"
        with sqlite3.connect(self.db) as db:
            db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, seller TEXT NOT NULL, status TEXT NOT NULL)")
            db.executemany(
                "INSERT INTO accounts VALUES (?, ?, ?)",
                [(1, "seller-4411", "open"), (2, "seller-4412", "open"), (3, "seller-4413", "open"), (4, "seller-4414", "open")],
            )
        self.tokens = {
            role: self._token(name, role)
            for name, role in [
                ("agent-1", "agent"),
                ("rev-1", "reviewer"),
                ("risk-1", "risk_officer"),
                ("lead-1", "incident_lead"),
            ]
        }
        self.proc = subprocess.Popen(
            [
                BIN, "serve", "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
                "--fs-root", str(self.root), "--sql", f"shop=sqlite:{self.db}",
            ],
            stdout=subprocess.PIPE,
            stderr=None,
            env={**os.environ, "RUST_LOG": "warn"},
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        prefix = "recourse gate listening on "
        assert line.startswith(prefix), f"unexpected first line from the gate: {line!r}"
        self.url = line[len(prefix) :]

    def _token(self, name: str, role: str) -> str:
        out = subprocess.run(
            [BIN, "token", "create", "--data-dir", str(self.data), "--name", name, "--role", role],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def api(self, method: str, path: str, role: str, body: dict | None = None) -> tuple[int, dict]:
        """The plain HTTP API, as `role`."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.tokens[role]}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def gate():
    g = Gate()
    yield g
    g.stop()


@asynccontextmanager
async def session(gate: Gate, transport: str, role: str = "agent"):
    token = gate.tokens[role]
    if transport == "stdio":
        params = StdioServerParameters(command=BIN, args=["mcp", "--gate", gate.url], env={"RECOURSE_TOKEN": token})
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s
    else:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            async with streamable_http_client(gate.url + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    yield s


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=120))


def folder(gate: Gate, transport: str, name: str) -> Path:
    d = gate.root / transport / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def listing(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_lists_the_tools_of_the_gates_connectors(gate, transport):
    async def go():
        async with session(gate, transport) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            # This gate has the fs and sql connectors, not http.
            assert set(tools) == {
                "fs_delete", "fs_write", "fs_move", "sql_update", "sql_delete", "sql_insert", "write_status", "explain",
            }
            delete = tools["fs_delete"]
            assert set(delete.input_schema["required"]) == {"path", "intent"}
            assert "idempotency_key" in delete.input_schema["properties"]
            assert delete.annotations.destructive_hint is True
            assert delete.annotations.idempotent_hint is True
            assert tools["write_status"].annotations.read_only_hint is True
            assert set(tools["explain"].input_schema["properties"]["tool"]["enum"]) == {
                "fs_delete", "fs_write", "fs_move", "sql_update", "sql_delete", "sql_insert",
            }

    run(go())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_delete_a_folder_executes_and_rolls_back_through_the_api(gate, transport):
    proj = folder(gate, transport, "scratch")
    (proj / "src").mkdir(exist_ok=True)
    (proj / "src" / "main.rs").write_text("fn main() {}\n")
    (proj / "README").write_text("scratch project\n")
    before = listing(proj)

    async def go():
        async with session(gate, transport) as s:
            r = await s.call_tool("fs_delete", {"path": str(proj), "intent": "remove the scratch project"})
            return r

    r = run(go())
    assert not r.is_error, text_of(r)
    sc = r.structured_content
    assert sc["outcome"] == "executed", text_of(r)
    assert text_of(r).startswith("Executed: write `")
    assert sc["rollback_handle"] == sc["id"]
    assert not proj.exists(), "the delete ran"

    status, rec = gate.api("POST", f"/v1/writes/{sc['id']}/rollback", "incident_lead", {"reason": "wrong folder"})
    assert status == 200, rec
    assert rec["status"] == "rolled_back", rec
    assert listing(proj) == before, "the files are back, byte for byte"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_write_a_customer_bears_is_held_and_the_waiting_call_returns_executed(gate, transport):
    cust = folder(gate, transport, "customer")
    (cust / "history.csv").write_text("15 years of orders\n")
    status, body = gate.api(
        "POST", "/v1/catalog", "risk_officer", {"resources": [{"id": f"fs:{cust}", "bearer": "customer"}]}
    )
    assert status == 200, body
    target = cust / "history.csv"

    async def go():
        async with session(gate, transport) as s:
            held = await s.call_tool("fs_delete", {"path": str(target), "intent": "drop the old order history"})
            assert not held.is_error, text_of(held)
            sc = held.structured_content
            assert sc["outcome"] == "held", text_of(held)
            assert text_of(held).startswith(f"Held for review: write `{sc['id']}` did not run.")
            assert sc["approvals"] == {"required": 1, "given": 0, "by": "reviewers"}
            assert "customer" in sc["bearers"]
            assert sc["reasons"] and all(r["sentence"].endswith(".") for r in sc["reasons"])
            assert target.exists(), "a held write has not run"

            progress: list[tuple[float, str | None]] = []

            async def on_progress(p: float, total: float | None, message: str | None) -> None:
                progress.append((p, message))

            waiting = asyncio.create_task(
                s.call_tool("write_status", {"id": sc["id"], "wait_s": 60}, progress_callback=on_progress)
            )
            for _ in range(100):
                if progress:
                    break
                await asyncio.sleep(0.1)
            assert progress, "the wait reports progress"
            assert not waiting.done(), "write_status waits while the write is held"
            code, rec = await asyncio.to_thread(
                gate.api, "POST", f"/v1/writes/{sc['id']}/approve", "reviewer", {"comment": "ok: archived elsewhere"}
            )
            assert code == 200, rec
            done = await waiting
            return sc["id"], done, progress

    wid, done, progress = run(go())
    assert not done.is_error, text_of(done)
    assert done.structured_content["outcome"] == "executed", text_of(done)
    assert done.structured_content["id"] == wid
    assert "waiting for reviewers" in (progress[0][1] or "")
    assert not target.exists(), "the approved delete ran"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_row_a_customer_bears_is_held_and_the_waiting_call_returns_executed(gate, transport):
    row = 1 if transport == "stdio" else 2
    status, body = gate.api(
        "POST", "/v1/catalog", "risk_officer", {"resources": [{"id": "sql:shop/accounts", "bearer": "customer"}]}
    )
    assert status == 200, body

    def row_status() -> str:
        with sqlite3.connect(gate.db) as db:
            return db.execute("SELECT status FROM accounts WHERE id = ?", (row,)).fetchone()[0]

    async def go():
        async with session(gate, transport) as s:
            held = await s.call_tool(
                "sql_update",
                {"database": "shop", "table": "accounts", "where": {"id": row}, "set": {"status": "closed"},
                 "intent": "close the seller account flagged by the integrity model"},
            )
            assert not held.is_error, text_of(held)
            sc = held.structured_content
            assert sc["outcome"] == "held", text_of(held)
            assert "customer" in sc["bearers"]
            assert row_status() == "open", "a held write has not run"
            waiting = asyncio.create_task(s.call_tool("write_status", {"id": sc["id"], "wait_s": 60}))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            code, rec = await asyncio.to_thread(
                gate.api, "POST", f"/v1/writes/{sc['id']}/approve", "reviewer", {"comment": "appeal lost"}
            )
            assert code == 200, rec
            return await waiting

    done = run(go())
    assert done.structured_content["outcome"] == "executed", text_of(done)
    assert row_status() == "closed"


def assert_names(result_or_error, arg: str) -> None:
    """A bad call is an is_error result or an MCP error; either names `arg`."""
    if isinstance(result_or_error, MCPError):
        assert f"`{arg}`" in result_or_error.message or arg in result_or_error.message, result_or_error.message
    else:
        assert result_or_error.is_error, text_of(result_or_error)
        assert f"`{arg}`" in text_of(result_or_error), text_of(result_or_error)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_arguments_get_a_clear_error_and_the_session_goes_on(gate, transport):
    keep = folder(gate, transport, "keep")
    (keep / "a.txt").write_text("keep me\n")

    async def call(s, name, args):
        try:
            return await s.call_tool(name, args)
        except MCPError as e:
            return e

    async def go():
        async with session(gate, transport) as s:
            assert_names(await call(s, "fs_delete", {"path": 42, "intent": "x"}), "path")
            assert_names(await call(s, "fs_delete", {"path": str(keep)}), "intent")
            assert_names(await call(s, "fs_delete", {"path": str(keep), "intent": "x", "recursive": True}), "recursive")
            # Checked by the gate's connector: a relative path.
            assert_names(await call(s, "fs_delete", {"path": "relative/dir", "intent": "x"}), "path")
            assert_names(await call(s, "write_status", {"id": "w_x", "wait_s": "soon"}), "wait_s")
            assert_names(await call(s, "explain", {"tool": "fs_delete", "arguments": {"intent": "x"}}), "arguments.path")
            unknown = await call(s, "rm_rf", {})
            if isinstance(unknown, MCPError):
                assert "rm_rf" in unknown.message
            else:
                assert unknown.is_error and "rm_rf" in text_of(unknown)
            # The session goes on: a good call still works.
            ok = await s.call_tool("explain", {"tool": "fs_delete", "arguments": {"path": str(keep), "intent": "tidy"}})
            assert not ok.is_error, text_of(ok)
            return ok

    ok = run(go())
    assert ok.structured_content["verdict"] == "proceed", text_of(ok)
    assert (keep / "a.txt").exists(), "nothing ran"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_explain_decides_without_storing_or_running(gate, transport):
    cust = folder(gate, transport, "customer-explain")
    (cust / "ledger").write_text("balances\n")
    status, body = gate.api(
        "POST", "/v1/catalog", "risk_officer", {"resources": [{"id": f"fs:{cust}", "bearer": "customer"}]}
    )
    assert status == 200, body
    _, before = gate.api("GET", "/v1/writes", "agent")

    async def go():
        async with session(gate, transport) as s:
            return await s.call_tool(
                "explain", {"tool": "fs_delete", "arguments": {"path": str(cust / "ledger"), "intent": "tidy up"}}
            )

    r = run(go())
    assert not r.is_error, text_of(r)
    assert r.structured_content["verdict"] == "hold", text_of(r)
    assert text_of(r).startswith("Would be held for review")
    assert (cust / "ledger").exists()
    _, after = gate.api("GET", "/v1/writes", "agent")
    assert len(after) == len(before), "explain stores nothing"


def test_the_http_endpoint_needs_a_token(gate):
    req = urllib.request.Request(
        gate.url + "/mcp",
        data=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    assert e.value.headers.get("WWW-Authenticate") == "Bearer"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_strict_mode_client_sends_every_field_with_null_for_unused(gate, transport):
    """OpenAI's strict mode makes every field required and nullable: the
    client sends each one, `null` when it has nothing to give."""
    target = folder(gate, transport, "strict") / "notes.txt"

    async def go():
        async with session(gate, transport) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            for name, tool in tools.items():
                schema = tool.input_schema
                for prop, sub in schema["properties"].items():
                    if prop not in schema.get("required", []):
                        assert "null" in json.dumps(sub), f"{name}.{prop} does not take null: {sub}"
            args = {name: None for name in tools["fs_write"].input_schema["properties"]}
            args.update({"path": str(target), "content": "strict\n", "intent": "write the notes"})
            written = await s.call_tool("fs_write", args)
            status = await s.call_tool(
                "write_status", {"id": written.structured_content["id"], "wait_s": None}
            )
            return written, status

    written, status = run(go())
    assert not written.is_error, text_of(written)
    assert written.structured_content["outcome"] == "executed", text_of(written)
    assert target.read_text() == "strict\n"
    assert not status.is_error, text_of(status)


def test_closing_a_session_answers_204(gate):
    auth = {"Authorization": f"Bearer {gate.tokens['agent']}"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    req = urllib.request.Request(
        gate.url + "/mcp",
        data=json.dumps(init).encode(),
        method="POST",
        headers={**auth, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        sid = resp.headers.get("mcp-session-id")
        resp.read()
    assert sid, "initialize opens a session"
    req = urllib.request.Request(
        gate.url + "/mcp",
        method="DELETE",
        headers={**auth, "mcp-session-id": sid, "MCP-Protocol-Version": "2025-06-18"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204
