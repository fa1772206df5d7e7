// Fills a real gate for the console's performance figures (run.sh, E2E_PERF=1):
// - a catalog where one file reaches 2,000 other resources (40 services, each
//   reaching 49 records), and a held delete of that file;
// - N held deletes (default 10,000) of files in a folder whose catalog entry
//   has bearer `customer`, so the gate holds each one for a person.
//
//   node perf-seed.mjs --url URL --agent TOKEN --risk TOKEN --dir ABS_DIR [--n 10000]
// Prints one JSON line: {"blast": id, "held": n, "submit_s": seconds, ...}.
import fs from "node:fs";
import path from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const url = args.url;
const n = Number(args.n ?? 10000);
const dir = path.resolve(args.dir);
const HUBS = 40;
const LEAVES = 49; // 40 + 40 * 49 = 2,000 reached

async function post(pathname, token, body) {
  const r = await fetch(url + pathname, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${pathname}: ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

const queueDir = path.join(dir, "queue");
const blastFile = path.join(dir, "blast", "root.json");
fs.mkdirSync(queueDir, { recursive: true });
fs.mkdirSync(path.dirname(blastFile), { recursive: true });
fs.writeFileSync(blastFile, '{"root":true}\n');
const files = [];
for (let i = 0; i < n; i++) {
  const f = path.join(queueDir, `f${String(i).padStart(5, "0")}.txt`);
  fs.writeFileSync(f, `${i}\n`);
  files.push(f);
}

// The catalog: the queue folder (customer), and the 2,000-resource radius.
const reaches = ["controlled", "observed", "external"];
const bearers = ["institution", "customer", "institution", "vendor"];
const resources = [
  { id: `fs:${queueDir}`, bearer: "customer", title: "Customer exports (perf queue)" },
  { id: `fs:${blastFile}`, bearer: "customer", title: "Perf blast root" },
];
const edges = [];
for (let h = 0; h < HUBS; h++) {
  const hub = `svc:perf-hub-${String(h).padStart(2, "0")}`;
  resources.push({ id: hub, reach: "observed", bearer: "institution", title: `Service ${h}` });
  edges.push({ from: `fs:${blastFile}`, to: hub, why: "the service reads the root file" });
  for (let l = 0; l < LEAVES; l++) {
    const leaf = `rec:perf-${String(h).padStart(2, "0")}-${String(l).padStart(3, "0")}`;
    resources.push({ id: leaf, reach: reaches[l % 3], bearer: bearers[(h + l) % 4] });
    edges.push({ from: hub, to: leaf, why: "the service writes this record" });
  }
}
let t = performance.now();
await post("/v1/catalog", args.risk, { resources, edges });
const catalogS = (performance.now() - t) / 1000;

const submit = (key, file, intent) =>
  post("/v1/writes", args.agent, { intent, idempotency_key: key, action: { connector: "fs", op: "delete", path: file } });

const blast = await submit("perf-blast", blastFile, "Delete the perf blast root (reaches 2,000 resources)");
if (blast.status !== "held") throw new Error(`the blast write is ${blast.status}, not held`);

t = performance.now();
let next = 0;
let held = 0;
const other = {};
async function worker() {
  while (next < files.length) {
    const i = next++;
    const w = await submit(`perf-q-${i}`, files[i], `Delete customer export #${i}`);
    if (w.status === "held") held++;
    else other[w.status] = (other[w.status] ?? 0) + 1;
  }
}
await Promise.all(Array.from({ length: 16 }, worker));
const submitS = (performance.now() - t) / 1000;
console.log(
  JSON.stringify({
    blast: blast.id,
    blast_radius: blast.decision?.blast_radius?.length ?? null,
    held,
    other,
    catalog_s: Number(catalogS.toFixed(2)),
    submit_s: Number(submitS.toFixed(2)),
  }),
);
