// Summarises a V8 .cpuprofile (from `npm run bench -- --only validate --profile`, which runs the server
// under `node --cpu-prof`): top functions and top modules by self time.
//   node --import tsx bench/profile-summary.ts bench/results/profiles/<file>.cpuprofile [top]
import fs from "node:fs";
import path from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [top]");
const top = Number(process.argv[3] ?? 20);
const prof = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;

// self time per node: sum of the time deltas of the samples that landed in it
const selfUs = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i]!;
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

const byFn = new Map<string, number>();
const byModule = new Map<string, number>();
for (const n of prof.nodes) {
  const t = selfUs.get(n.id) ?? 0;
  if (t === 0) continue;
  const f = n.callFrame;
  const fnKey = `${f.functionName || "(anonymous)"}  ${moduleOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
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
