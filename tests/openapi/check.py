"""The gate's OpenAPI document, checked from outside with tools nobody here
wrote (tests/openapi/run.sh sets up the tools and calls this):

1. openapi-spec-validator: the document the gate serves validates.
2. openapi-python-client generates a Python client; flow.py drives a real
   gate with it: submit -> held -> list held -> approve -> runs -> rollback
   -> rolled back, verified.
3. openapi-typescript + openapi-fetch: the same with a TypeScript client
   (ts/flow.ts, type-checked by tsc against the generated types).
4. schemathesis against a fresh gate (fixed seed, bounded): 0 server errors,
   0 responses that break the document.

Each step prints what it runs; the first failure ends the run (exit 1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = os.environ.get("RECOURSE_BIN") or str(HERE.parents[1] / "target" / "debug" / "recourse")
VENV_BIN = Path(sys.executable).parent
# Schemathesis: a fixed seed so a failure reproduces; examples per operation
# bounded so the run stays near two minutes on two cores.
SEED = int(os.environ.get("OPENAPI_SEED", "20261130"))
MAX_EXAMPLES = int(os.environ.get("OPENAPI_MAX_EXAMPLES", "80"))


def say(msg: str) -> None:
    print(f"[openapi-tests] {msg}", flush=True)


def run(cmd: list, **kw) -> None:
    say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


class Gate:
    """One `recourse serve` on a fresh data dir and fs root, with a token of
    each role."""

    ROLES = ["agent", "reviewer", "risk_officer", "incident_lead", "admin"]

    def __init__(self, base: Path, *extra: str) -> None:
        self.data = base / "data"
        self.root = (base / "root").resolve()
        self.data.mkdir(parents=True)
        self.root.mkdir(parents=True)
        self.tokens = {role: self._token(f"{role}-1", role) for role in self.ROLES}
        self.log = open(base / "gate.log", "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data, "--listen", "127.0.0.1:0", "--fs-root", self.root, *extra],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "RUST_LOG": "warn"},
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        prefix = "recourse gate listening on "
        if not line.startswith(prefix):
            self.stop()
            raise SystemExit(f"unexpected first line from the gate: {line!r} (log: {base / 'gate.log'})")
        self.url = line[len(prefix) :]

    def _token(self, name: str, role: str) -> str:
        out = subprocess.run(
            [BIN, "token", "create", "--data-dir", self.data, "--name", name, "--role", role],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"recourse token create: {out.stderr}")
        return out.stdout.strip()

    def env(self, target: Path) -> dict:
        return {
            **os.environ,
            "GATE_URL": self.url,
            "TOKEN_AGENT": self.tokens["agent"],
            "TOKEN_REVIEWER": self.tokens["reviewer"],
            "TOKEN_RISK": self.tokens["risk_officer"],
            "TOKEN_LEAD": self.tokens["incident_lead"],
            "TARGET_FILE": str(target),
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def customer_file(gate: Gate, name: str) -> Path:
    """A file in a folder of its own, for one client's run."""
    folder = gate.root / name / "customer"
    folder.mkdir(parents=True)
    target = folder / "history.csv"
    target.write_text(f"15 years of orders ({name})\n")
    return target


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="recourse-openapi-"))
    keep = os.environ.get("OPENAPI_KEEP") == "1"
    gate = Gate(work / "gate")
    try:
        doc_path = work / "openapi.json"
        with urllib.request.urlopen(gate.url + "/v1/openapi.json", timeout=30) as resp:
            doc = json.loads(resp.read())
        doc_path.write_text(json.dumps(doc, indent=2))
        say(f"the served document: {len(doc['paths'])} paths, OpenAPI {doc['openapi']}")

        say("1. openapi-spec-validator")
        run([VENV_BIN / "openapi-spec-validator", doc_path])

        say("2. openapi-python-client: generate, then drive the gate")
        # `--meta none`: the package alone, importable from `work`.
        py_out = work / "recourse_gate_client"
        run(
            [VENV_BIN / "openapi-python-client", "generate", "--path", doc_path, "--output-path", py_out,
             "--meta", "none", "--overwrite"],
        )
        run(
            [sys.executable, HERE / "flow.py"],
            env={**gate.env(customer_file(gate, "python")), "PYTHONPATH": str(work)},
            cwd=work,
        )

        say("3. openapi-typescript + openapi-fetch: generate, type-check, drive the gate")
        ts = HERE / "ts"
        generated = ts / "generated"
        shutil.rmtree(generated, ignore_errors=True)
        shutil.rmtree(ts / "dist", ignore_errors=True)
        run([ts / "node_modules" / ".bin" / "openapi-typescript", doc_path, "-o", generated / "schema.d.ts"], cwd=ts)
        run([ts / "node_modules" / ".bin" / "tsc", "-p", ts / "tsconfig.json"], cwd=ts)
        run(["node", ts / "dist" / "flow.js"], env=gate.env(customer_file(gate, "typescript")), cwd=ts)
    finally:
        gate.stop()

    say(f"4. schemathesis (seed {SEED}, at most {MAX_EXAMPLES} examples per operation) on a fresh gate")
    # A limit high enough that the run tests the API rather than the
    # rate limiter (whose 429 is documented all the same).
    fuzzed = Gate(work / "fuzzed", "--rate-limit", "10000", "--rate-burst", "10000")
    try:
        run(
            [
                VENV_BIN / "st", "run", fuzzed.url + "/v1/openapi.json",
                "--header", f"Authorization: Bearer {fuzzed.tokens['admin']}",
                "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_headers_conformance,response_schema_conformance",
                "--seed", str(SEED),
                "--max-examples", str(MAX_EXAMPLES),
                "--phases", "examples,coverage,fuzzing",
                # One worker: with two, Hypothesis's lambda-source cache has
                # raised a "recursion depth mismatch" of its own (a runtime
                # error of the tool, not a finding about the gate).
                "--workers", "1",
                "--request-timeout", "20",
                "--no-shrink",
                # A stream that stays open: nothing to compare a response with.
                "--exclude-path", "/v1/events",
                "--report", "junit",
                "--report-dir", work / "schemathesis",
            ],
            cwd=work,
        )
    except subprocess.CalledProcessError:
        say(f"the gate's log: {work / 'fuzzed' / 'gate.log'}")
        raise
    finally:
        fuzzed.stop()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    say("passed")
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    try:
        code = main()
    except subprocess.CalledProcessError as e:
        say(f"FAILED: {e}")
        code = 1
    say(f"{time.monotonic() - start:.0f} s")
    sys.exit(code)
