// Performance figures of the console (printed, not asserted), against a gate
// that perf-seed.mjs filled. run.sh runs it with E2E_PERF=1. From the env:
//   E2E_APP, E2E_SHOTS, E2E_PERF_OUT (markdown table written here),
//   E2E_PERF_BLAST (the held write whose blast radius has 2,000 resources),
//   E2E_PERF_SEED (perf-seed.mjs's JSON line).
// The app starts connected (RECOURSE_GATE_URL/RECOURSE_TOKEN, a reviewer).
//
// Figures:
// - queue first paint: the UI's `queue-painted` performance mark (the frame
//   after the first non-empty list rendered), in ms since the webview's
//   navigation start, and since the harness asked tauri-driver for a session
//   (which launches the app process);
// - blast radius: from the click on the write in the queue until the frame
//   after cytoscape's layout stopped (BlastGraph's `data-drawn-at`), and the
//   layout alone (`data-layout-ms`);
// - memory: VmRSS / VmHWM from /proc of the recourse-console process and of
//   its WebKit child processes (the webview renders in WebKitWebProcess).
import { remote } from "webdriverio";
import fs from "node:fs";
import path from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const app = fs.realpathSync(env("E2E_APP"));
const shots = env("E2E_SHOTS");
const blastId = env("E2E_PERF_BLAST");
const seed = JSON.parse(env("E2E_PERF_SEED"));

function status(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m")) ?? [])[1] ?? NaN);
    const name = (s.match(/^Name:\s+(.+)$/m) ?? [])[1];
    const ppid = Number((s.match(/^PPid:\s+(\d+)$/m) ?? [])[1]);
    return { pid, name, ppid, rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}
const pids = () => fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
const appPids = () =>
  pids().filter((p) => {
    try {
      return fs.readlinkSync(`/proc/${p}/exe`) === app;
    } catch {
      return false;
    }
  });
// Another copy of the app may be running (someone's demo): only the one
// tauri-driver starts for this session counts.
const before = new Set(appPids());
/** The app process this session started (its executable is E2E_APP) and its children. */
function memory() {
  const main = appPids()
    .filter((p) => !before.has(p))
    .map(status)
    .filter(Boolean)
    .at(-1);
  if (!main) return null;
  const kids = pids().map(status).filter((s) => s && s.ppid === main.pid);
  return { main, kids };
}
const mb = (kb) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MB` : "?");
function memLine(m) {
  if (!m) return "app process not found";
  const kids = m.kids.map((k) => `${k.name} ${mb(k.rss)} (peak ${mb(k.hwm)})`).join(", ");
  return `recourse-console ${mb(m.main.rss)} (peak ${mb(m.main.hwm)})${kids ? `; ${kids}` : ""}`;
}

const rows = [];
const t0 = Date.now();
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
try {
  await browser.setTimeout({ script: 300000 });
  await browser.setWindowSize(1280, 800).catch(() => {});
  const q = await browser.executeAsync((done) => {
    const check = () => {
      const m = performance.getEntriesByName("queue-painted")[0];
      if (m) done({ at: m.startTime, rows: m.detail?.rows ?? null, origin: performance.timeOrigin });
      else setTimeout(check, 20);
    };
    check();
  });
  const sinceLaunch = q.origin + q.at - t0;
  await browser.pause(300);
  await browser.saveScreenshot(path.join(shots, "perf-01-queue.png"));
  const memQueue = memory();
  rows.push([`First paint of the held queue (${q.rows} writes), from webview start`, `${q.at.toFixed(0)} ms`]);
  rows.push([`First paint of the held queue, from launching the app`, `${sinceLaunch.toFixed(0)} ms`]);

  // Keyboard triage through the big list: 200 × j, then the time to the last frame.
  const keys = await browser.executeAsync((done) => {
    const t = performance.now();
    for (let i = 0; i < 200; i++) window.dispatchEvent(new KeyboardEvent("keydown", { key: "j", bubbles: true }));
    requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));
  });
  rows.push([`200 × j (move selection) in the ${q.rows}-write queue, to the next frame`, `${keys.toFixed(0)} ms`]);

  const search = await browser.$('[data-testid="search"]');
  await search.setValue(blastId);
  await (await browser.$(`[data-testid="queue-row"][data-write-id="${blastId}"]`)).waitForExist({ timeout: 30000 });
  const b = await browser.executeAsync((id, done) => {
    const btn = document.querySelector(`[data-testid="queue-row"][data-write-id="${id}"] button.intent`);
    const t = performance.now();
    btn.click();
    const check = () => {
      const g = document.querySelector('[data-testid="blast-graph"][data-drawn-at]');
      if (g) done({ total: Number(g.dataset.drawnAt) - t, layout: Number(g.dataset.layoutMs), nodes: Number(g.dataset.nodes) });
      else setTimeout(check, 10);
    };
    check();
  }, blastId);
  await (await browser.$('[data-testid="blast-graph"]')).scrollIntoView();
  await browser.pause(500);
  await browser.saveScreenshot(path.join(shots, "perf-02-blast-2000.png"));
  const memBlast = memory();
  rows.push([`Blast radius of ${b.nodes} resources: click in the queue to graph drawn`, `${b.total.toFixed(0)} ms`]);
  rows.push([`  of which the dagre layout`, `${b.layout.toFixed(0)} ms`]);
  rows.push([`Memory after the queue painted`, memLine(memQueue)]);
  rows.push([`Memory after the blast radius was drawn`, memLine(memBlast)]);
  rows.push([`(setup) ${seed.held} held deletes submitted to the gate over HTTP, 16 at a time`, `${seed.submit_s} s`]);
} finally {
  await browser.deleteSession().catch(() => {});
}

const table = ["| Figure | Value |", "|---|---|", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
console.log(table);
if (process.env.E2E_PERF_OUT) fs.writeFileSync(process.env.E2E_PERF_OUT, table + "\n");
