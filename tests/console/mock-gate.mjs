// A stand-in for the gate, speaking the same wire format (crates/client/src/wire.rs),
// for driving the console when the real gate is not built. It really moves files:
// the "executed delete" moved FS_ROOT/reports/q3 into VAULT, and a rollback moves
// it back, so the E2E can check the disk either way.
//
//   node mock-gate.mjs --port 7431 --fs-root DIR --vault DIR [--many 10000]
// Prints one JSON line {"url", "tokens", "ids"} on stdout when ready.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const port = Number(args.port ?? 7431);
const fsRoot = path.resolve(args["fs-root"] ?? "/tmp/recourse-mock/root");
const vault = path.resolve(args.vault ?? "/tmp/recourse-mock/vault");
const many = Number(args.many ?? 0);

const tokens = {
  "tok-reviewer": { name: "rita-reviewer", role: "reviewer" },
  "tok-incident": { name: "ivan-incident", role: "incident_lead" },
  "tok-risk": { name: "rosa-risk", role: "risk_officer" },
  "tok-agent": { name: "cleanup-bot", role: "agent" },
  "tok-admin": { name: "root-admin", role: "admin" },
};

const now = Date.now();
const iso = (ms) => new Date(ms).toISOString();

// The executed delete: FS_ROOT/reports/q3 (two files) moved to the vault.
const reportsDir = path.join(fsRoot, "reports", "q3");
const vaultDir = path.join(vault, "w-exec-1", "q3");
fs.mkdirSync(path.dirname(reportsDir), { recursive: true });
fs.mkdirSync(path.dirname(vaultDir), { recursive: true });
if (!fs.existsSync(vaultDir)) {
  fs.mkdirSync(reportsDir, { recursive: true });
  fs.writeFileSync(path.join(reportsDir, "summary.csv"), "region,total\nnorth,42\nsouth,17\n");
  fs.writeFileSync(path.join(reportsDir, "notes.txt"), "quarterly notes\n");
  fs.renameSync(reportsDir, vaultDir);
}

const catalog = {
  resources: [
    { id: "account:seller-4411", kind: "marketplace.account", title: "Seller 4411", reach: "controlled", bearer: "customer" },
    { id: "listings:seller-4411", kind: "marketplace.listings", title: "Listings of seller 4411", reach: "controlled", bearer: "institution" },
    { id: "payouts:seller-4411", kind: "payments.payouts", title: "Pending payouts", reach: "observed", bearer: "customer" },
    { id: "licenses:seller-4411", reach: "external", bearer: "customer", title: "Licensed goods at buyers" },
    { id: "bureau:seller-4411", reach: "external", bearer: "customer", title: "Credit bureau file" },
    { id: "vault:market", kind: "vault", title: "Market snapshots", reach: "controlled", bearer: "institution" },
    { id: `fs:${fsRoot}`, kind: "fs.dir", reach: "controlled", bearer: "institution" },
    { id: `fs:${path.join(fsRoot, "reports")}`, kind: "fs.dir", reach: "controlled", bearer: "institution" },
    { id: `fs:${path.join(fsRoot, "patients")}`, kind: "fs.dir", reach: "controlled", bearer: "patient" },
  ],
  edges: [
    { from: "account:seller-4411", to: "listings:seller-4411", why: "closing the account delists every listing" },
    { from: "account:seller-4411", to: "payouts:seller-4411", why: "closing the account freezes pending payouts" },
    { from: "listings:seller-4411", to: "licenses:seller-4411", why: "delisting revokes licensed digital goods" },
    { from: "payouts:seller-4411", to: "bureau:seller-4411", why: "a frozen payout is reported to the bureau after 30 days" },
  ],
};

function hist(...steps) {
  return steps.map(([to, actor, from, note, at]) => ({ at: iso(at ?? now - 3600_000), to, actor, ...(from ? { from } : {}), ...(note ? { note } : {}) }));
}

/** The gate's rule (crates/client/src/stakes.rs): a third party bears
 * something in the blast radius, something external is reached, or the
 * write is an http request. */
function needsReason(connector, decision) {
  return (
    decision.bearers.some((b) => b !== "institution") ||
    decision.blast_radius.some((e) => e.bearer !== "institution" || e.reach === "external") ||
    connector === "http"
  );
}

function record(o) {
  return {
    id: o.id,
    agent: o.agent,
    status: o.status,
    connector: o.connector,
    proposal: o.proposal,
    decision: o.decision,
    proposal_hash: crypto.createHash("sha256").update(JSON.stringify(o.proposal)).digest("hex"),
    decision_hash: crypto.createHash("sha256").update(JSON.stringify(o.decision)).digest("hex"),
    submitted_hash: crypto.createHash("sha256").update("submitted" + JSON.stringify(o.proposal)).digest("hex"),
    created_at: o.created_at,
    updated_at: o.created_at,
    required_approvals: o.required_approvals ?? 1,
    approval_needs_reason: needsReason(o.connector, o.decision),
    approvals: [],
    history: o.history,
    ...(o.capture ? { capture: o.capture } : {}),
    ...(o.outcome ? { outcome: o.outcome } : {}),
  };
}

const closeWindow = iso(now + 40 * 60_000);
const CODE_ORDER = ["external", "uncovered", "third_party_bearer", "evidence_in_blast_radius", "evidence_missing", "evidence_unverifiable",
  "evidence_expired", "evidence_window_closing", "evidence_stale", "manual_step", "unknown_resource"];
const writes = new Map();
function add(w) { writes.set(w.id, w); }

add(record({
  id: "w-close-4411", agent: "integrity-bot", status: "held", connector: "http",
  created_at: iso(now - 2 * 3600_000),
  history: hist(["held", "gate", null, "third_party_bearer, external", now - 2 * 3600_000]),
  proposal: {
    agent: "integrity-bot", intent: "Close seller account 4411 flagged by integrity model v7", idempotency_key: "9b1d-closure-4411",
    action: { connector: "http", op: "request", method: "POST", url: "https://market.internal/accounts/4411/close" },
    touches: ["account:seller-4411"],
    rollback: { steps: [
      { restores: ["account:seller-4411", "listings:seller-4411"], op: { connector: "http", op: "request", method: "POST", url: "https://market.internal/accounts/4411/reopen" },
        requires: [{ id: "snap-acct", kind: "snapshot", location: "vault:market" }, { id: "notice", kind: "window", until: closeWindow }] },
      { restores: ["payouts:seller-4411"], op: { kind: "manual", note: "ask payments ops to release the payouts" }, requires: [] },
    ] },
  },
  decision: {
    decision: "hold",
    reasons: [
      { code: "external", resource: "licenses:seller-4411", path: ["account:seller-4411", "listings:seller-4411", "licenses:seller-4411"], detail: "delisting revokes licensed digital goods" },
      { code: "external", resource: "bureau:seller-4411", path: ["account:seller-4411", "payouts:seller-4411", "bureau:seller-4411"], detail: "a frozen payout is reported to the bureau after 30 days" },
      { code: "uncovered", resource: "listings:seller-4411", path: ["account:seller-4411", "listings:seller-4411"], detail: "no available step restores listings:seller-4411" },
      { code: "uncovered", resource: "payouts:seller-4411", path: ["account:seller-4411", "payouts:seller-4411"], detail: "closing the account freezes pending payouts" },
      { code: "third_party_bearer", resource: "account:seller-4411", detail: "the customer bears account:seller-4411 if reversal fails" },
      { code: "evidence_window_closing", evidence: "notice", step: 0, detail: "the window notice closes in 40 minutes" },
      { code: "manual_step", step: 1, detail: "step 2 is manual: ask payments ops to release the payouts" },
    ],
    blast_radius: [
      { resource: "account:seller-4411", depth: 0, reach: "controlled", bearer: "customer", covered: false, restored_by: [0] },
      { resource: "listings:seller-4411", depth: 1, reach: "controlled", bearer: "institution", covered: false, via: "account:seller-4411", restored_by: [0] },
      { resource: "payouts:seller-4411", depth: 1, reach: "observed", bearer: "customer", covered: false, via: "account:seller-4411", restored_by: [1] },
      { resource: "licenses:seller-4411", depth: 2, reach: "external", bearer: "customer", covered: false, via: "listings:seller-4411" },
      { resource: "bureau:seller-4411", depth: 2, reach: "external", bearer: "customer", covered: false, via: "payouts:seller-4411" },
    ],
    bearers: ["institution", "customer"],
    evidence: [
      { id: "snap-acct", status: "verified", kind: "snapshot", location: "vault:market", captured_at: iso(now - 3 * 3600_000), steps: [0] },
      { id: "notice", status: "window_closing", kind: "window", until: closeWindow, steps: [0] },
    ],
    steps: [{ step: 0, manual: false, available: false }, { step: 1, manual: true, available: false }],
  },
}));

const patientsFile = path.join(fsRoot, "patients", "intake-0932.json");
add(record({
  id: "w-purge-intake", agent: "cleanup-bot", status: "held", connector: "fs",
  created_at: iso(now - 30 * 60_000),
  history: hist(["held", "gate", null, "third_party_bearer", now - 30 * 60_000]),
  proposal: {
    agent: "cleanup-bot", intent: "Delete stale patient intake form 0932",
    action: { connector: "fs", op: "delete", path: patientsFile },
    touches: [`fs:${patientsFile}`],
    rollback: { steps: [{ restores: [`fs:${patientsFile}`], op: { connector: "fs", op: "restore", path: patientsFile },
      requires: [{ id: "vault-w-purge-intake", kind: "snapshot", location: `vault:fs` }], modelled_by: "fs" }] },
  },
  decision: {
    decision: "hold",
    reasons: [{ code: "third_party_bearer", resource: `fs:${patientsFile}`, detail: `the patient bears fs:${patientsFile} if reversal fails` }],
    blast_radius: [{ resource: `fs:${patientsFile}`, depth: 0, reach: "controlled", bearer: "patient", covered: true, restored_by: [0] }],
    bearers: ["patient"],
    evidence: [{ id: "vault-w-purge-intake", status: "verified", kind: "snapshot", location: "vault:fs", captured_at: iso(now - 30 * 60_000), steps: [0] }],
    steps: [{ step: 0, manual: false, available: true }],
  },
}));

// A third held write, for the freeze test (approve refused while frozen).
{
  const w = structuredClone(writes.get("w-purge-intake"));
  w.id = "w-purge-intake-2";
  w.proposal.intent = "Delete stale patient intake form 0933";
  add(w);
}

// Every reason shown, the decisive first: a closed window among five codes.
{
  const w = structuredClone(writes.get("w-close-4411"));
  w.id = "w-reasons-1";
  w.proposal.intent = "Close seller account 4412 (its reopening window has closed)";
  const closed = iso(now - 6 * 3600_000);
  w.decision.evidence = w.decision.evidence.map((e) => (e.id === "notice" ? { ...e, status: "expired", until: closed } : e));
  w.decision.reasons = w.decision.reasons.map((r) =>
    r.code === "evidence_window_closing" ? { ...r, code: "evidence_expired", detail: "the window notice closed 6 hours ago" } : r,
  );
  w.decision.reasons.sort((a, b) => CODE_ORDER.indexOf(a.code) - CODE_ORDER.indexOf(b.code));
  add(w);
}

// Low stakes: the institution bears it and nothing external is reached.
add(record({
  id: "w-low-1", agent: "cleanup-bot", status: "held", connector: "fs",
  created_at: iso(now - 50 * 60_000),
  history: hist(["held", "gate", null, "uncovered", now - 50 * 60_000]),
  proposal: {
    agent: "cleanup-bot", intent: "Delete the January ledger export (the monthly report reads it)",
    action: { connector: "fs", op: "delete", path: path.join(fsRoot, "ledger", "jan.csv") },
    touches: [`fs:${path.join(fsRoot, "ledger", "jan.csv")}`], rollback: { steps: [] },
  },
  decision: {
    decision: "hold",
    reasons: [{ code: "uncovered", resource: "report:monthly", detail: "the monthly report reads the export" }],
    blast_radius: [
      { resource: `fs:${path.join(fsRoot, "ledger", "jan.csv")}`, depth: 0, reach: "controlled", bearer: "institution", covered: true, restored_by: [0] },
      { resource: "report:monthly", depth: 1, reach: "observed", bearer: "institution", covered: false, via: `fs:${path.join(fsRoot, "ledger", "jan.csv")}` },
    ],
    bearers: ["institution"], evidence: [], steps: [],
  },
}));

// Two approvals needed (a patient bears it): the queue shows "1 of 2".
{
  const w = structuredClone(writes.get("w-purge-intake"));
  w.id = "w-partial-1";
  w.proposal.intent = "Delete stale patient intake form 0935";
  w.required_approvals = 2;
  add(w);
}

// A write whose outcome the gate could not tell (the resolve step settles it).
{
  const w = structuredClone(writes.get("w-purge-intake"));
  w.id = "w-unknown-1";
  w.proposal.intent = "Delete stale patient intake form 0934";
  w.status = "outcome_unknown";
  w.history.push({ at: iso(now - 10 * 60_000), from: "executing", to: "outcome_unknown", actor: "gate", note: "the gate stopped while it ran" });
  add(w);
}

const reportsId = `fs:${reportsDir}`;
add(record({
  id: "w-exec-1", agent: "cleanup-bot", status: "executed", connector: "fs",
  created_at: iso(now - 20 * 60_000),
  history: hist(["executing", "gate", null, null, now - 20 * 60_000], ["executed", "gate", "executing", null, now - 20 * 60_000 + 800]),
  capture: { vault: vaultDir },
  outcome: { deleted: reportsDir },
  proposal: {
    agent: "cleanup-bot", intent: "Delete the Q3 report folder (superseded)",
    action: { connector: "fs", op: "delete", path: reportsDir },
    touches: [reportsId],
    rollback: { steps: [{ restores: [reportsId], op: { connector: "fs", op: "restore", path: reportsDir },
      requires: [{ id: "vault-w-exec-1", kind: "snapshot", location: "vault:fs" }], modelled_by: "fs" }] },
  },
  decision: {
    decision: "proceed", reasons: [],
    blast_radius: [
      { resource: reportsId, depth: 0, reach: "controlled", bearer: "institution", covered: true, restored_by: [0] },
      { resource: `${reportsId}/summary.csv`, depth: 1, reach: "controlled", bearer: "institution", covered: true, via: reportsId, restored_by: [0] },
      { resource: `${reportsId}/notes.txt`, depth: 1, reach: "controlled", bearer: "institution", covered: true, via: reportsId, restored_by: [0] },
    ],
    bearers: ["institution"],
    evidence: [{ id: "vault-w-exec-1", status: "verified", kind: "snapshot", location: "vault:fs", captured_at: iso(now - 20 * 60_000), steps: [0],
      verified_by: "the `fs` connector, from its own capture", detail: "captured and sealed" }],
    steps: [{ step: 0, manual: false, available: true }],
  },
}));

const agents = ["cleanup-bot", "integrity-bot", "billing-agent", "support-agent"];
const connectors = ["fs", "sql", "http"];
const bearersPool = [["institution"], ["customer"], ["patient"], ["institution", "vendor"]];
for (let i = 0; i < many; i++) {
  const id = `w-bulk-${String(i).padStart(5, "0")}`;
  const bearers = bearersPool[i % bearersPool.length];
  add(record({
    id, agent: agents[i % agents.length], status: "held", connector: connectors[i % 3],
    created_at: iso(now - (i % 5000) * 60_000),
    history: hist(["held", "gate"]),
    proposal: { agent: agents[i % agents.length], intent: `Bulk change #${i}`, action: {}, touches: [`sql:ledger/entries/${i}`], rollback: { steps: [] } },
    decision: { decision: "hold", reasons: [{ code: "uncovered", resource: `sql:ledger/entries/${i}`, detail: "no step" }],
      blast_radius: [{ resource: `sql:ledger/entries/${i}`, depth: 0, reach: "controlled", bearer: bearers[0], covered: false }],
      bearers, evidence: i % 7 === 0 ? [{ id: `w${i}`, status: "window_closing", kind: "window", until: iso(now + (i % 300) * 60_000), steps: [] }] : [], steps: [] },
  }));
}

let freeze = { frozen: false };
const audit = [];
function log(actor, action, write_id, body) {
  const prev = audit.length ? audit[audit.length - 1].hash : "0".repeat(64);
  const entry = { seq: audit.length + 1, at: new Date().toISOString(), actor, action, ...(write_id ? { write_id } : {}), body, prev_hash: prev };
  entry.hash = crypto.createHash("sha256").update(prev + JSON.stringify(body) + action).digest("hex");
  audit.push(entry);
}
for (const w of writes.values()) if (!w.id.startsWith("w-bulk")) log(w.agent, "submit", w.id, { intent: w.proposal.intent, decision: w.decision.decision });

const clients = new Set();
function emit(kind, w) {
  const ev = JSON.stringify({ kind, ...(w ? { write_id: w.id, status: w.status } : {}), at: new Date().toISOString() });
  for (const c of clients) c.write(`event: ${kind}\ndata: ${ev}\n\n`);
}

/** What `who` may do to `w` now, as the gate lists it (role, status,
 * separation of duties): approve/reject held writes for reviewers who did
 * not submit them, rollback and resolve for incident leads. */
function actionsFor(who, w) {
  const has = (...roles) => who.role === "admin" || roles.includes(who.role);
  const out = [];
  const approved = (w.approvals ?? w.approved_by ?? []).some((a) => (a.by ?? a) === who.name);
  if (has("reviewer") && w.status === "held" && w.agent !== who.name && !approved) out.push("approve");
  if (has("reviewer") && w.status === "held") out.push("reject");
  if (has("incident_lead") && (w.status === "executed" || w.status === "rollback_failed")) out.push("rollback");
  if (has("incident_lead") && w.status === "outcome_unknown") out.push("resolve");
  return out;
}
const forCaller = (who, w) => ({ ...w, actions: actionsFor(who, w) });

function summary(w) {
  const windows = w.decision.evidence.map((e) => e.until).filter(Boolean).sort();
  return {
    id: w.id, agent: w.agent, intent: w.proposal.intent, status: w.status, connector: w.connector, verdict: w.decision.decision,
    reason_codes: [...new Set(w.decision.reasons.map((r) => r.code))], bearers: w.decision.bearers, touches: w.proposal.touches,
    blast_radius_size: w.decision.blast_radius.length, ...(windows[0] ? { nearest_window: windows[0] } : {}),
    created_at: w.created_at, updated_at: w.updated_at,
    required_approvals: w.required_approvals, approved_by: [...new Set(w.approvals.map((a) => a.by))].sort(),
    approval_needs_reason: w.approval_needs_reason,
  };
}

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
const err = (res, status, code, message) => send(res, status, { error: { code, message } });

function transition(w, to, actor, note) {
  w.history.push({ at: new Date().toISOString(), from: w.status, to, actor, ...(note ? { note } : {}) });
  w.status = to;
  w.updated_at = new Date().toISOString();
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const tok = (req.headers.authorization ?? "").replace(/^Bearer /, "");
  const who = tokens[tok];
  if (!who) return err(res, 401, "unauthorized", "unknown token");
  const may = (...roles) => roles.includes(who.role) || who.role === "admin";
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    const json = body ? JSON.parse(body) : {};
    const p = url.pathname;
    let m;
    if (req.method === "GET" && p === "/v1/whoami") return send(res, 200, who);
    if (req.method === "GET" && p === "/v1/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(": hello\n\n");
      clients.add(res);
      req.on("close", () => clients.delete(res));
      return;
    }
    if (req.method === "GET" && p === "/v1/writes") {
      const st = url.searchParams.get("status");
      let list = [...writes.values()].filter((w) => !st || w.status === st);
      if (who.role === "agent") list = list.filter((w) => w.agent === who.name);
      return send(res, 200, list.map((w) => forCaller(who, summary(w))));
    }
    if (req.method === "GET" && (m = p.match(/^\/v1\/writes\/([^/]+)$/))) {
      const w = writes.get(decodeURIComponent(m[1]));
      return w ? send(res, 200, forCaller(who, w)) : err(res, 404, "not_found", "no such write");
    }
    if (req.method === "POST" && (m = p.match(/^\/v1\/writes\/([^/]+)\/(approve|reject|rollback)$/))) {
      const w = writes.get(decodeURIComponent(m[1]));
      if (!w) return err(res, 404, "not_found", "no such write");
      const op = m[2];
      if (op === "approve" || op === "reject") {
        if (!may("reviewer")) return err(res, 403, "forbidden", `the ${who.role} role may not ${op}`);
        if (w.status !== "held") return err(res, 409, "conflict", `the write is ${w.status}, not held`);
        if (op === "approve" && freeze.frozen) return err(res, 409, "frozen", `the gate is frozen by \`${freeze.by}\`: nothing runs until an incident lead resumes it`);
        if (op === "approve") {
          const comment = json.comment ?? json.reason;
          if (w.approvals.some((a) => a.by === who.name)) return err(res, 409, "already_approved", `\`${who.name}\` approved write \`${w.id}\` already`);
          if (w.approval_needs_reason && !comment?.trim())
            return send(res, 422, { error: { code: "reason_required", field: "comment", message: `approving write \`${w.id}\` needs a written reason: say why in \`comment\`` } });
          w.approvals.push({ by: who.name, at: new Date().toISOString(), ...(comment ? { comment } : {}), proposal_hash: w.proposal_hash, decision_hash: w.decision_hash });
          if (w.approvals.length < w.required_approvals) {
            w.history.push({ at: new Date().toISOString(), from: "held", to: "held", actor: who.name, note: `approval ${w.approvals.length} of ${w.required_approvals}` });
          } else {
            transition(w, "approved", who.name, comment);
            transition(w, "executing", "gate");
            transition(w, "executed", "gate");
          }
        } else {
          if (!json.reason) return err(res, 400, "invalid", "reason: must not be empty");
          transition(w, "rejected", who.name, json.reason);
        }
        log(who.name, op, w.id, json);
        emit("write", w);
        return send(res, 200, forCaller(who, w));
      }
      if (!may("incident_lead")) return err(res, 403, "forbidden", `the ${who.role} role may not roll back`);
      if (w.status !== "executed") return err(res, 409, "conflict", `the write is ${w.status}, not executed`);
      transition(w, "rolling_back", who.name, json.reason);
      const items = [];
      if (w.id === "w-exec-1") {
        fs.mkdirSync(path.dirname(reportsDir), { recursive: true });
        fs.renameSync(vaultDir, reportsDir);
        for (const e of w.decision.blast_radius) items.push({ resource: e.resource, status: "restored" });
      }
      w.rollback = { verified: items.every((i) => i.status === "restored"), items, forced: !!json.force };
      transition(w, "rolled_back", "gate");
      log(who.name, "rollback", w.id, json);
      emit("write", w);
      return send(res, 200, forCaller(who, w));
    }
    if (req.method === "POST" && (m = p.match(/^\/v1\/writes\/([^/]+)\/resolve$/))) {
      const w = writes.get(decodeURIComponent(m[1]));
      if (!w) return err(res, 404, "not_found", "no such write");
      if (!may("incident_lead")) return err(res, 403, "forbidden", `\`${who.name}\` is a ${who.role}: only incident leads roll back and settle writes`);
      if (w.status !== "outcome_unknown") return err(res, 409, "conflict", `the write is ${w.status}, not outcome_unknown`);
      if (typeof json.executed !== "boolean") return err(res, 400, "invalid", "executed: must be true or false");
      if (!json.reason?.trim()) return err(res, 400, "invalid", "reason: must not be empty");
      transition(w, json.executed ? "executed" : "failed", who.name, json.reason);
      log(who.name, "write.resolved", w.id, json);
      emit("write", w);
      return send(res, 200, forCaller(who, w));
    }
    if (req.method === "GET" && p === "/v1/freeze") return send(res, 200, freeze);
    // Always enforcing: observe mode is tested against the real gate only.
    if (req.method === "GET" && p === "/v1/mode") return send(res, 200, { mode: "enforce" });
    if (req.method === "POST" && (p === "/v1/freeze" || p === "/v1/resume")) {
      if (!may("incident_lead")) return err(res, 403, "forbidden", "only incident leads freeze and resume");
      freeze = p === "/v1/freeze" ? { frozen: true, by: who.name, at: new Date().toISOString(), reason: json.reason } : { frozen: false };
      log(who.name, p.slice(4), null, json);
      emit("freeze");
      return send(res, 200, freeze);
    }
    if (req.method === "POST" && p === "/v1/rewind") {
      if (!may("incident_lead")) return err(res, 403, "forbidden", "only incident leads rewind");
      const items = [...writes.values()].filter((w) => w.status === "executed" && w.updated_at >= json.since).map((w) => ({ write: summary(w) }));
      return send(res, 200, { preview: !!json.preview, items });
    }
    if (req.method === "GET" && p === "/v1/catalog") return send(res, 200, catalog);
    if (req.method === "GET" && (m = p.match(/^\/v1\/catalog\/resources\/(.+)$/))) {
      const id = decodeURIComponent(m[1]);
      const r = catalog.resources.find((x) => x.id === id);
      if (!r) return err(res, 404, "not_found", `no resource ${id}`);
      const byId = (x) => catalog.resources.find((y) => y.id === x);
      return send(res, 200, {
        resource: r,
        reaches: catalog.edges.filter((e) => e.from === id).map((e) => ({ resource: byId(e.to), why: e.why, contains: false })),
        reached_by: catalog.edges.filter((e) => e.to === id).map((e) => ({ resource: byId(e.from), why: e.why, contains: false })),
        writes: [...writes.values()].filter((w) => w.proposal.touches.includes(id)).map(summary),
      });
    }
    if (req.method === "GET" && p === "/v1/audit") {
      // As the gate pages it: newest first unless `after` or order=asc.
      const q = url.searchParams;
      const limit = Number(q.get("limit") ?? 1000);
      const asc = q.get("order") === "asc" || (q.get("order") === null && q.has("after"));
      if (asc) return send(res, 200, audit.filter((e) => e.seq > Number(q.get("after") ?? 0)).slice(0, limit));
      const before = q.has("before") ? Number(q.get("before")) : Infinity;
      return send(res, 200, audit.filter((e) => e.seq < before).reverse().slice(0, limit));
    }
    if (req.method === "GET" && p === "/v1/audit/verify") return send(res, 200, { ok: true, entries: audit.length, head: audit.at(-1)?.hash ?? "" });
    return err(res, 404, "not_found", `no route ${req.method} ${p}`);
  });
});

server.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({
    url: `http://127.0.0.1:${port}`,
    tokens: { reviewer: "tok-reviewer", incident_lead: "tok-incident", risk_officer: "tok-risk", agent: "tok-agent" },
    ids: { approve: "w-close-4411", reject: "w-purge-intake", executed: "w-exec-1", frozen: "w-purge-intake-2", unknown: "w-unknown-1",
      reasons: "w-reasons-1", low: "w-low-1", partial: "w-partial-1" },
    catalog: { search: "seller-4411", resource: "payouts:seller-4411", reached_by: "account:seller-4411", reaches: "bureau:seller-4411" },
    restored: [path.join(reportsDir, "summary.csv"), path.join(reportsDir, "notes.txt")],
  }));
});
process.on("SIGTERM", () => process.exit(0));
