// The TypeScript client generated from the gate's OpenAPI document
// (openapi-typescript types, openapi-fetch calls) drives a real gate:
// submit an fs delete a customer bears -> it is held -> it is in the held
// list -> a reviewer approves -> it runs -> an incident lead rolls it back ->
// rolled back, verified. `tsc` first checks every call against the
// generated types (a body or parameter the document lost fails the build).
//
// Environment (set by tests/openapi/check.py): GATE_URL, TOKEN_AGENT,
// TOKEN_REVIEWER, TOKEN_RISK, TOKEN_LEAD, TARGET_FILE (a file in a folder
// nobody has catalogued yet).
import createClient from "openapi-fetch";
import { existsSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { paths, components } from "./generated/schema.js";

type WriteRecord = components["schemas"]["WriteRecord"];

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`FAILED: ${what}`);
}

const baseUrl = env("GATE_URL");
const as = (token: string) =>
  createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
const agent = as(env("TOKEN_AGENT"));
const reviewer = as(env("TOKEN_REVIEWER"));
const risk = as(env("TOKEN_RISK"));
const lead = as(env("TOKEN_LEAD"));
const target = env("TARGET_FILE");
const before = readFileSync(target);

// The folder is the customer's: deleting in it is held for a person.
{
  const { data, error } = await risk.POST("/v1/catalog", {
    body: { resources: [{ id: `fs:${dirname(target)}`, bearer: "customer" }] },
  });
  check(data && !error, `upsert_catalog: ${JSON.stringify(error)}`);
}

let rec: WriteRecord;
{
  const { data, error, response } = await agent.POST("/v1/writes", {
    body: {
      intent: "drop the old order history (TypeScript client)",
      action: { connector: "fs", op: "delete", path: target },
    },
  });
  check(data && response.status === 201, `submit_write: ${response.status} ${JSON.stringify(error)}`);
  rec = data;
  check(rec.status === "held", `held, not ${rec.status}`);
  check(rec.decision.decision === "hold", `decision ${rec.decision.decision}`);
  check(rec.decision.bearers.includes("customer"), "the customer bears it");
  check(existsSync(target), "a held write has not run");
}

{
  const { data, error } = await reviewer.GET("/v1/writes", {
    params: { query: { status: "held" } },
  });
  check(data, `list_writes: ${JSON.stringify(error)}`);
  check(data.some((w) => w.id === rec.id), "the write is in the held list");
  check(data.every((w) => w.status === "held"), "only held writes");
}

{
  const { data, error } = await reviewer.POST("/v1/writes/{id}/approve", {
    params: { path: { id: rec.id } },
    body: { comment: "archived elsewhere" },
  });
  check(data, `approve_write: ${JSON.stringify(error)}`);
}

// It runs: approval answers once the write has run, or soon after.
for (let i = 0; i < 100; i++) {
  const { data, error } = await agent.GET("/v1/writes/{id}", { params: { path: { id: rec.id } } });
  check(data, `get_write: ${JSON.stringify(error)}`);
  rec = data;
  if (rec.status === "executed") break;
  await new Promise((r) => setTimeout(r, 100));
}
check(rec.status === "executed", `executed, not ${rec.status}`);
check(!existsSync(target), "the file is gone once the write ran");

{
  const { data, error } = await lead.POST("/v1/writes/{id}/rollback", {
    params: { path: { id: rec.id } },
    body: { reason: "the history was still needed" },
  });
  check(data, `rollback_write: ${JSON.stringify(error)}`);
  rec = data;
}
check(rec.status === "rolled_back", `rolled_back, not ${rec.status}`);
check(rec.rollback?.verified === true, `verified: ${JSON.stringify(rec.rollback)}`);
check(readFileSync(target).equals(before), "the file is back, byte for byte");

// An error is typed as the document's ErrorBody.
{
  const { error, response } = await agent.GET("/v1/writes/{id}", {
    params: { path: { id: "w-does-not-exist" } },
  });
  check(response.status === 404 && error?.error.code === "not_found", `404: ${JSON.stringify(error)}`);
}

console.log(`typescript client: ${rec.id} held -> approved -> executed -> rolled back (verified)`);
