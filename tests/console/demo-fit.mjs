// The demo's held writes at 1280x800, as a reviewer first sees each one:
// the decisive reason, who pays and what cannot be undone must all be on
// screen without scrolling (issue: "for each of the seven held writes at
// 1280x800 ... visible without scrolling"). Measured in the real app with
// getBoundingClientRect after the page opens, and a screenshot of each.
//   E2E_APP            the recourse-console binary
//   E2E_DEMO_WRITES    JSON [{case, write}] of the demo's held writes
//   E2E_SHOTS          directory for screenshots
// The app starts connected to the demo gate as its reviewer
// (RECOURSE_GATE_URL, RECOURSE_TOKEN).
import { remote } from "webdriverio";
import path from "node:path";
import fs from "node:fs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const shots = env("E2E_SHOTS");
fs.mkdirSync(shots, { recursive: true });
const writes = JSON.parse(env("E2E_DEMO_WRITES"));
const tid = (id) => `[data-testid="${id}"]`;

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

/** Where each part the reviewer must see lies, in the viewport. */
function measure() {
  const rect = (sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, text: (el.textContent || "").slice(0, 120) };
  };
  return {
    height: window.innerHeight,
    width: window.innerWidth,
    decisive: rect('[data-testid="reasons"] > li:first-child'),
    pays: rect('[data-testid="who-pays"] > :nth-child(2)'),
    undo: rect('[data-testid="cannot-undo"] li:first-child'),
  };
}

let failed = 0;
try {
  await browser.setWindowSize(1280, 800).catch(() => {});
  await (await browser.$(tid("who"))).waitForExist({ timeout: 30000 });
  for (const w of writes) {
    const name = w.case.replace(/\W+/g, "-");
    try {
      await (await browser.$(tid("nav-queue"))).click();
      await (await browser.$(tid("tab-held"))).click();
      const row = await browser.$(`${tid("queue-row")}[data-write-id="${w.write}"] button.intent`);
      await row.waitForExist({ timeout: 15000 });
      await row.click();
      await (await browser.$(tid("write-page"))).waitForExist({ timeout: 15000 });
      await (await browser.$(tid("reasons"))).waitForExist({ timeout: 15000 });
      await browser.pause(600); // the graph lays itself out; nothing above it moves after
      const m = await browser.execute(measure);
      const problems = [];
      for (const [part, r] of [
        ["the decisive reason", m.decisive],
        ["who pays", m.pays],
        ["what cannot be undone", m.undo],
      ]) {
        if (!r) problems.push(`${part} is not on the page`);
        else if (r.top < 0 || r.bottom > m.height) problems.push(`${part} lies at ${Math.round(r.top)}-${Math.round(r.bottom)} px, outside 0-${m.height}`);
      }
      await browser.saveScreenshot(path.join(shots, `demo-${name}.png`));
      if (problems.length) {
        failed++;
        console.log(`FAIL ${w.case} (${m.width}x${m.height}): ${problems.join("; ")}`);
      } else {
        console.log(`ok   ${w.case} (${m.width}x${m.height}): decisive "${m.decisive.text.slice(0, 60)}…" at ${Math.round(m.decisive.bottom)} px, who pays at ${Math.round(m.pays.bottom)} px, cannot undo at ${Math.round(m.undo.bottom)} px`);
      }
    } catch (e) {
      failed++;
      console.log(`FAIL ${w.case}: ${e?.message ?? e}`);
      await browser.saveScreenshot(path.join(shots, `FAIL-demo-${name}.png`)).catch(() => {});
    }
  }
} finally {
  await browser.deleteSession().catch(() => {});
}
console.log(`${writes.length - failed} of ${writes.length} demo writes fit 1280x800`);
process.exit(failed ? 1 : 0);
