"""The Python client openapi-python-client generated from the gate's
OpenAPI document drives a real gate: submit an fs delete a customer bears
-> held -> in the held list -> a reviewer approves -> it runs -> an incident
lead rolls it back -> rolled back, verified.

Environment (set by check.py): GATE_URL, TOKEN_AGENT, TOKEN_REVIEWER,
TOKEN_RISK, TOKEN_LEAD, TARGET_FILE; the generated package
`recourse_gate_client` on PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
import time
from http import HTTPStatus
from pathlib import Path

from recourse_gate_client import AuthenticatedClient
from recourse_gate_client.api.catalog import upsert_catalog
from recourse_gate_client.api.writes import approve_write, get_write, list_writes, rollback_write, submit_write
from recourse_gate_client.models import (
    ApproveRequest,
    Catalog,
    ErrorBody,
    Proposal,
    RollbackRequest,
    Verdict,
    WriteRecord,
    WriteStatus,
)


def check(cond: object, what: str) -> None:
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def client(token_var: str) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=os.environ["GATE_URL"], token=os.environ[token_var], raise_on_unexpected_status=True)


agent = client("TOKEN_AGENT")
reviewer = client("TOKEN_REVIEWER")
risk = client("TOKEN_RISK")
lead = client("TOKEN_LEAD")
target = Path(os.environ["TARGET_FILE"])
before = target.read_bytes()

# The folder is the customer's: deleting in it is held for a person.
resp = upsert_catalog.sync_detailed(
    client=risk, body=Catalog.from_dict({"resources": [{"id": f"fs:{target.parent}", "bearer": "customer"}]})
)
check(resp.status_code == HTTPStatus.OK, f"upsert_catalog: {resp.status_code} {resp.content!r}")

resp = submit_write.sync_detailed(
    client=agent,
    body=Proposal.from_dict(
        {
            "intent": "drop the old order history (Python client)",
            "action": {"connector": "fs", "op": "delete", "path": str(target)},
        }
    ),
)
check(resp.status_code == HTTPStatus.CREATED, f"submit_write: {resp.status_code} {resp.content!r}")
rec = resp.parsed
check(isinstance(rec, WriteRecord), f"submit_write parsed {rec!r}")
assert isinstance(rec, WriteRecord)
check(rec.status == WriteStatus.HELD, f"held, not {rec.status}")
check(rec.decision.decision == Verdict.HOLD, f"decision {rec.decision.decision}")
check(target.exists(), "a held write has not run")

held = list_writes.sync(client=reviewer, status=WriteStatus.HELD)
check(isinstance(held, list), f"list_writes: {held!r}")
assert isinstance(held, list)
check(any(w.id == rec.id for w in held), "the write is in the held list")
check(all(w.status == WriteStatus.HELD for w in held), "only held writes")

approved = approve_write.sync(id=rec.id, client=reviewer, body=ApproveRequest(comment="archived elsewhere"))
check(isinstance(approved, WriteRecord), f"approve_write: {approved!r}")

# It runs: approval answers once the write has run, or soon after.
for _ in range(100):
    got = get_write.sync(id=rec.id, client=agent)
    check(isinstance(got, WriteRecord), f"get_write: {got!r}")
    assert isinstance(got, WriteRecord)
    rec = got
    if rec.status == WriteStatus.EXECUTED:
        break
    time.sleep(0.1)
check(rec.status == WriteStatus.EXECUTED, f"executed, not {rec.status}")
check(not target.exists(), "the file is gone once the write ran")

rolled = rollback_write.sync(id=rec.id, client=lead, body=RollbackRequest(reason="the history was still needed"))
check(isinstance(rolled, WriteRecord), f"rollback_write: {rolled!r}")
assert isinstance(rolled, WriteRecord)
check(rolled.status == WriteStatus.ROLLED_BACK, f"rolled_back, not {rolled.status}")
report = rolled.rollback
check(report is not None and getattr(report, "verified", False) is True, f"verified: {report!r}")
check(target.read_bytes() == before, "the file is back, byte for byte")

# An error is parsed as the document's ErrorBody.
missing = get_write.sync(id="w-does-not-exist", client=agent)
check(isinstance(missing, ErrorBody) and missing.error.code == "not_found", f"404: {missing!r}")

print(f"python client: {rec.id} held -> approved -> executed -> rolled back (verified)")
