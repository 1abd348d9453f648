// Summarises a V8 .cpuprofile (from `npm run bench -- --only validate --profile`, which runs the server
// under `node --cpu-prof`): top functions and top modules by self time.
//   node --import tsx bench/profile-summary.ts bench/results/profiles/<file>.cpuprofile [top] [--last <s>] [--inclusive]
// --last <s> counts only the samples of the profile's last s seconds (the measured load, not the
// start-up and warm-up before it). --inclusive adds the project's own functions by total time
// (self time plus what they called), each sample counted once per function however deep its recursion.
import fs from "node:fs";
import path from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const argv = process.argv.slice(2);
const inclusive = argv.includes("--inclusive");
const lastAt = argv.indexOf("--last");
const lastSeconds = lastAt >= 0 ? Number(argv[lastAt + 1]) : Number.POSITIVE_INFINITY;
const args = argv.filter((a, i) => a !== "--inclusive" && i !== lastAt && i !== lastAt + 1);
const file = args[0];
if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [top] [--last <s>] [--inclusive]");
const top = Number(args[1] ?? 20);
const prof = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;

// self time per node: sum of the time deltas of the samples that landed in it
const selfUs = new Map<number, number>();
const from = prof.endTime - lastSeconds * 1e6;
let at = prof.startTime;
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i]!;
  at += prof.timeDeltas[i] ?? 0;
  if (at < from) continue;
  selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function moduleOf(url: string): string {
  if (!url) return "(native / V8)";
  if (url.startsWith("node:")) return url;
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const dist = url.indexOf("/dist/");
  return dist >= 0 ? `licensekit ${url.slice(dist + 1)}` : path.basename(url);
}

const fnKeyOf = (n: Node) => {
  const f = n.callFrame;
  return `${f.functionName || "(anonymous)"}  ${moduleOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
};
const byFn = new Map<string, number>();
const byModule = new Map<string, number>();
for (const n of prof.nodes) {
  const t = selfUs.get(n.id) ?? 0;
  if (t === 0) continue;
  const f = n.callFrame;
  const fnKey = fnKeyOf(n);
  byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + t);
  const m = moduleOf(f.url);
  byModule.set(m, (byModule.get(m) ?? 0) + t);
}

const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`;
const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, t] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t)}  ${(t / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
};
process.stdout.write(`${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled\n`);
show("top functions by self time", byFn);
show("top modules by self time", byModule);

if (inclusive) {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const totalFn = new Map<string, number>();
  for (const [id, t] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (!n.callFrame.url.includes("/dist/")) continue;
      const k = fnKeyOf(n);
      if (seen.has(k)) continue;
      seen.add(k);
      totalFn.set(k, (totalFn.get(k) ?? 0) + t);
    }
  }
  show("the project's functions by total time (self + callees)", totalFn);
}
