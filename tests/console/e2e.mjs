// Drives the real console (custom-protocol build) through tauri-driver.
// Everything it needs comes from the environment (run.sh sets it):
//   E2E_APP            absolute path of the recourse-console binary
//   E2E_GATE_URL       the gate the app was started against (RECOURSE_GATE_URL)
//   E2E_INCIDENT_TOKEN an incident_lead token (typed into the connect form)
//   E2E_REVIEWER_TOKEN, E2E_RISK_TOKEN   reviewer and risk_officer tokens
//   E2E_HELD_APPROVE, E2E_HELD_REJECT, E2E_EXECUTED, E2E_HELD_FROZEN   write ids
//   E2E_CATALOG_SEARCH, E2E_CATALOG_RESOURCE, E2E_CATALOG_REACHED_BY,
//   E2E_CATALOG_REACHES   what the catalog browser is asked and must show
//   E2E_RESTORED       JSON list of paths that must exist after the rollback
//   E2E_AGENT_TOKEN    (optional) an agent token: its console has no catalog
//   E2E_OUTCOME_UNKNOWN (optional) a write whose outcome is unknown, for the
//                      incident lead to settle (the mock gate has one)
//   E2E_SHOTS          directory for screenshots
// The app itself starts with RECOURSE_TOKEN = a reviewer token.
import { remote } from "webdriverio";
import fs from "node:fs";
import path from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const shots = env("E2E_SHOTS");
fs.mkdirSync(shots, { recursive: true });

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.message ?? e}`);
    await shot(`FAIL-${name.replace(/\W+/g, "-")}`).catch(() => {});
  }
}

const browser = await remote({
  hostname: "127.0.0.1",
  port: 4444,
  logLevel: "error",
  capabilities: {
    browserName: "wry",
    "wdio:enforceWebDriverClassic": true,
    "tauri:options": { application: env("E2E_APP") },
  },
});

async function shot(name) {
  const file = path.join(shots, `${name}.png`);
  await browser.saveScreenshot(file);
  console.log(`     screenshot ${file}`);
}
const tid = (id) => `[data-testid="${id}"]`;
async function waitText(sel, re, timeout = 15000) {
  const el = await browser.$(sel);
  await el.waitForExist({ timeout });
  await browser.waitUntil(async () => re.test(await el.getText()), { timeout, timeoutMsg: `${sel} never matched ${re}` });
  return el;
}
async function openWrite(tab, id) {
  await (await browser.$(tid("nav-queue"))).click();
  await (await browser.$(tid(`tab-${tab}`))).click();
  const row = await browser.$(`${tid("queue-row")}[data-write-id="${id}"] button.intent`);
  await row.waitForExist({ timeout: 15000 });
  await row.click();
  await (await browser.$(tid("write-page"))).waitForExist({ timeout: 15000 });
}
async function setText(sel, text) {
  const el = await browser.$(sel);
  await el.waitForExist({ timeout: 10000 });
  await el.setValue(text);
}
async function disconnect() {
  const btns = await browser.$$("header button");
  for (const b of btns) if ((await b.getText()) === "Disconnect") await b.click();
  await (await browser.$(tid("connect-url"))).waitForExist({ timeout: 10000 });
}
/** Disconnects and connects through the form; returns the token's name. */
async function connectAs(token, roleRe, shotName) {
  await disconnect();
  await setText(tid("connect-url"), env("E2E_GATE_URL"));
  await setText(tid("connect-token"), token);
  const remember = await browser.$('input[type="checkbox"]');
  if (await remember.isSelected()) await remember.click();
  if (shotName) await shot(shotName);
  await (await browser.$(tid("connect-submit"))).click();
  const who = await waitText(tid("who"), roleRe);
  return (await who.getText()).split(" · ")[0].trim();
}
let incidentName = "";

try {
  await browser.setWindowSize(1280, 800).catch(() => {});

  await step("starts connected from RECOURSE_GATE_URL/RECOURSE_TOKEN as a reviewer", async () => {
    await waitText(tid("who"), /Reviewer/, 30000);
    await (await browser.$(tid("queue-row"))).waitForExist({ timeout: 15000 });
    await shot("01-queue-reviewer");
  });

  await step("reviewer sees the held write's page (graph, evidence, plan, who pays)", async () => {
    await openWrite("held", env("E2E_HELD_APPROVE"));
    await (await browser.$(tid("blast-graph"))).waitForExist();
    await (await browser.$(tid("who-pays"))).waitForExist();
    // A reason's subject selects its node: the panel shows its path and restoring step.
    const about = await browser.$$(".reasons button.link");
    if (about.length) await about[about.length - 1].click();
    await browser.pause(800);
    await shot("02-write-held");
    await (await browser.$(tid("node-path"))).waitForExist({ timeout: 5000 });
    await (await browser.$(tid("blast-graph"))).scrollIntoView();
    await browser.pause(500);
    await shot("02b-blast-graph");
  });

  await step("reviewer approves a held write and sees the gate's new status", async () => {
    await (await browser.$(tid("approve"))).click();
    await setText(tid("decide-text"), "checked with the integrity team");
    await (await browser.$(tid("decide-submit"))).click();
    await waitText(tid("decide-result"), /recorded/i);
    await shot("03-approved");
    await (await browser.$(tid("decide-close"))).click();
    const st = await (await browser.$(tid("write-status"))).getText();
    if (/^held$/.test(st) && !/approval/.test(st)) console.log(`     status after approve: ${st}`);
  });

  await step("reviewer rejects another held write with a reason", async () => {
    await openWrite("held", env("E2E_HELD_REJECT"));
    await (await browser.$(tid("reject"))).click();
    await setText(tid("decide-text"), "patient data: keep until the retention review");
    await (await browser.$(tid("decide-submit"))).click();
    await waitText(tid("decide-result"), /rejected/);
    await (await browser.$(tid("decide-close"))).click();
    await waitText(tid("write-status"), /rejected/);
    await shot("04-rejected");
  });

  await step("reviewer is not offered rollback, and the gate refuses it through the host", async () => {
    await openWrite("executed", env("E2E_EXECUTED"));
    if (await (await browser.$(tid("rollback"))).isExisting()) throw new Error("rollback offered to a reviewer");
    const res = await browser.executeAsync((id, done) => {
      window.__TAURI_INTERNALS__
        .invoke("rollback", { id, reason: "e2e: reviewer tries", force: false })
        .then((v) => done({ ok: v }), (e) => done({ err: e }));
    }, env("E2E_EXECUTED"));
    if (!res.err || res.err.kind !== "api" || res.err.status !== 403) throw new Error(`expected an api 403, got ${JSON.stringify(res)}`);
    console.log(`     gate said: ${res.err.status} ${res.err.code}: ${res.err.message}`);
    await shot("05-executed-reviewer");
  });

  await step("each evidence item says who verified it and how", async () => {
    // The executed delete's snapshot was observed by the fs connector from
    // its own capture: the page names that observer, not the agent.
    const by = await waitText(tid("verified-by"), /Checked by the `fs` connector, from its own capture/);
    await by.scrollIntoView();
    await browser.pause(400);
    await shot("05b-evidence-checked-by");
  });

  await step("disconnect and connect as an incident lead through the form", async () => {
    incidentName = await connectAs(env("E2E_INCIDENT_TOKEN"), /Incident lead/, "06-connect-form");
    await (await browser.$(tid("freeze-switch"))).waitForExist();
  });

  await step("incident lead rolls back the executed delete; verified; files are back on disk", async () => {
    await openWrite("executed", env("E2E_EXECUTED"));
    await (await browser.$(tid("rollback"))).click();
    await setText(tid("rollback-reason"), "e2e: the Q3 folder was still in use");
    await (await browser.$(tid("rollback-confirm"))).click();
    await shot("07-rollback-plan");
    await (await browser.$(tid("rollback-submit"))).click();
    await waitText(tid("rollback-verdict"), /verified/i, 30000);
    await shot("08-rollback-verified");
    const verdict = await (await browser.$(tid("rollback-verdict"))).getText();
    if (/NOT/.test(verdict)) throw new Error(verdict);
    await (await browser.$(tid("rollback-close"))).click();
    const missing = JSON.parse(env("E2E_RESTORED")).filter((p) => !fs.existsSync(p));
    if (missing.length) throw new Error(`not back on disk: ${missing.join(", ")}`);
  });

  if (process.env.E2E_OUTCOME_UNKNOWN) {
    await step("incident lead settles a write whose outcome is unknown, with a reason", async () => {
      await openWrite("outcome_unknown", env("E2E_OUTCOME_UNKNOWN"));
      await waitText(tid("write-status"), /outcome unknown — an incident lead must check/);
      await (await browser.$(tid("status-note"))).waitForExist();
      await (await browser.$(tid("resolve"))).click();
      const submit = await browser.$(tid("resolve-submit"));
      await (await browser.$(tid("resolve-not-ran"))).click();
      if (await submit.isEnabled()) throw new Error("settling was possible without a reason");
      await setText(tid("resolve-reason"), "e2e: the intake form is still on disk");
      await shot("08b-resolve");
      await submit.click();
      await waitText(tid("resolve-status"), /failed/);
      await (await browser.$(tid("resolve-close"))).click();
      await waitText(tid("write-status"), /failed/);
      if (await (await browser.$(tid("resolve"))).isExisting()) throw new Error("still offered to settle a settled write");
    });
  }

  await step("incident lead freezes the gate; the banner says who froze it", async () => {
    await (await browser.$(tid("nav-queue"))).click();
    await (await browser.$(tid("freeze-switch"))).click();
    await setText(tid("freeze-reason"), "e2e: incident 42, stop everything");
    await (await browser.$(tid("freeze-submit"))).click();
    const banner = await waitText(tid("frozen-banner"), new RegExp(`Frozen by ${incidentName}\\b`));
    if (!/incident 42/.test(await banner.getText())) throw new Error(`the banner lacks the reason: ${await banner.getText()}`);
    await waitText(tid("freeze-switch"), /FROZEN/);
    await browser.pause(300);
    await shot("09-frozen-incident-lead");
  });

  await step("a reviewer sees who froze it, and the gate refuses their approve while frozen", async () => {
    await connectAs(env("E2E_REVIEWER_TOKEN"), /Reviewer/);
    await waitText(tid("frozen-banner"), new RegExp(`Frozen by ${incidentName}\\b`));
    await (await browser.$(tid("frozen"))).waitForExist();
    await openWrite("held", env("E2E_HELD_FROZEN"));
    // The button follows the gate's `actions`: a gate may leave approve out
    // while frozen. Either way the gate must refuse it.
    if (await (await browser.$(tid("approve"))).isExisting()) {
      await (await browser.$(tid("approve"))).click();
      await setText(tid("decide-text"), "e2e: approving during a freeze");
      await (await browser.$(tid("decide-submit"))).click();
      await waitText(tid("decide-error"), /frozen/i);
      await browser.pause(300);
      await shot("10-approve-refused-frozen");
      if (await (await browser.$(tid("decide-result"))).isExisting()) throw new Error("the refused approve was shown as done");
      await (await browser.$(tid("decide-cancel"))).click();
    } else {
      console.log("     approve is not offered while frozen; asking the gate directly");
      const res = await browser.executeAsync((id, done) => {
        window.__TAURI_INTERNALS__
          .invoke("approve", { id, comment: "e2e: approving during a freeze" })
          .then((v) => done({ ok: v }), (e) => done({ err: e }));
      }, env("E2E_HELD_FROZEN"));
      if (!res.err || !/frozen/i.test(`${res.err.code} ${res.err.message}`)) throw new Error(`expected a frozen refusal, got ${JSON.stringify(res)}`);
      await shot("10-approve-refused-frozen");
    }
    await waitText(tid("write-status"), /held/);
  });

  await step("incident lead resumes the gate; the banner goes", async () => {
    await connectAs(env("E2E_INCIDENT_TOKEN"), /Incident lead/);
    await (await browser.$(tid("frozen-banner"))).waitForExist();
    await (await browser.$(tid("freeze-switch"))).click();
    await (await browser.$(tid("freeze-submit"))).click();
    await (await browser.$(tid("frozen-banner"))).waitForExist({ reverse: true, timeout: 10000 });
    await waitText(tid("freeze-switch"), /^\s*Freeze\s*$/);
    await shot("11-resumed");
  });

  await step("risk officer searches the catalog and sees what reaches a resource", async () => {
    await connectAs(env("E2E_RISK_TOKEN"), /Risk officer/);
    if (await (await browser.$(tid("freeze-switch"))).isExisting()) throw new Error("freeze switch offered to a risk officer");
    await (await browser.$(tid("nav-catalog"))).click();
    await setText(tid("catalog-search"), env("E2E_CATALOG_SEARCH"));
    const row = await browser.$(`${tid("catalog-row")}[data-resource-id="${env("E2E_CATALOG_RESOURCE")}"]`);
    await row.waitForExist({ timeout: 10000 });
    const rows = await browser.$$(tid("catalog-row"));
    for (const r of rows) {
      const id = await r.getAttribute("data-resource-id");
      if (!id.toLowerCase().includes(env("E2E_CATALOG_SEARCH").toLowerCase()) && !(await r.getText()).toLowerCase().includes(env("E2E_CATALOG_SEARCH").toLowerCase()))
        throw new Error(`search kept a row that does not match: ${id}`);
    }
    await row.click();
    await (await browser.$(`${tid("catalog-title")}[data-resource-id="${env("E2E_CATALOG_RESOURCE")}"]`)).waitForExist({ timeout: 10000 });
    await waitText(tid("catalog-reached-by"), new RegExp(env("E2E_CATALOG_REACHED_BY").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    await waitText(tid("catalog-reaches"), new RegExp(env("E2E_CATALOG_REACHES").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    await browser.pause(300);
    await shot("12-catalog-risk-officer");
  });

  await step("dark theme, audit chain verification", async () => {
    await (await browser.$(tid("theme"))).click();
    await (await browser.$(tid("nav-audit"))).click();
    await (await browser.$(tid("audit-verify"))).click();
    await waitText(tid("audit-result"), /intact|broken/);
    // Newest first: the first row holds the highest sequence number.
    const rows = await browser.$$(tid("audit-row"));
    if (rows.length === 0) throw new Error("no audit rows shown");
    const seqs = [];
    for (const r of rows) seqs.push(Number(await r.getAttribute("data-seq")));
    if (seqs[0] !== Math.max(...seqs)) throw new Error(`the audit trail is not newest first: ${seqs.join(", ")}`);
    await shot("13-audit-dark");
    await openWrite("all", env("E2E_HELD_APPROVE"));
    await browser.pause(800);
    await shot("14-write-dark");
  });

  if (process.env.E2E_AGENT_TOKEN) {
    await step("an agent sees its queue only: no catalog, audit or rewind tab", async () => {
      await connectAs(env("E2E_AGENT_TOKEN"), /Agent/);
      await (await browser.$(tid("nav-queue"))).waitForExist();
      for (const t of ["nav-catalog", "nav-audit", "nav-incident", "freeze-switch"]) {
        if (await (await browser.$(tid(t))).isExisting()) throw new Error(`${t} offered to an agent`);
      }
      await shot("14b-agent");
    });
  }

  if (process.env.E2E_STOP_GATE_CMD) {
    await step("an unreachable gate is said plainly", async () => {
      const { execSync } = await import("node:child_process");
      execSync(process.env.E2E_STOP_GATE_CMD);
      await (await browser.$(tid("nav-queue"))).click();
      await (await browser.$(tid("tab-held"))).click();
      await waitText(tid("unreachable"), /cannot be reached/, 20000);
      await shot("15-unreachable");
    });
  }
} finally {
  await browser.deleteSession().catch(() => {});
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
