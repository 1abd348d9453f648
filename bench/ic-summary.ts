// Summarises a V8 inline-cache log (`node --log-ic`): which property reads and writes missed their
// inline cache in the last seconds of the log, by function, source position and property, most
// frequent first. A site that misses about once per request in a steady state (state N->N: a
// megamorphic access that missed V8's stub cache) is paying V8's runtime on every request.
//   npm run bench -- --only validate --server-node-args="--log-ic --logfile=/tmp/ic.log --no-logfile-per-isolate"
//   node --import tsx bench/ic-summary.ts /tmp/ic.log [--last <s>=5] [--top <n>=40]
import fs from "node:fs";
import { parseArgs } from "node:util";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { last: { type: "string", default: "5" }, top: { type: "string", default: "40" } },
});
const file = positionals[0];
if (!file) throw new Error("usage: bench/ic-summary.ts <log> [--last <s>] [--top <n>]");

interface Code {
  start: number;
  end: number;
  name: string;
}
interface Miss {
  type: string;
  pc: number;
  /** µs since the process started. */
  time: number;
  site: string;
}

const codes: Code[] = [];
const misses: Miss[] = [];
for (const line of fs.readFileSync(file, "latin1").split("\n")) {
  const f = line.split(",");
  if (f[0] === "code-creation") {
    // code-creation,<type>,<kind>,<time>,<address>,<size>,<name…>
    const start = Number.parseInt(f[4] ?? "", 16);
    codes.push({ start, end: start + Number(f[5]), name: f.slice(6).join(",") });
  } else if (/^(Keyed)?(Load|Store)(Global)?IC$/.test(f[0] ?? "")) {
    // <type>,<pc>,<time>,<line>,<column>,<old state>,<new state>,<map>,<key>,<modifier>,<slow reason>
    misses.push({ type: f[0]!, pc: Number.parseInt(f[1] ?? "", 16), time: Number(f[2]), site: `@${f[3]}:${f[4]} ${f[5]}->${f[6]} key=${f[8]} ${f[10] ?? ""}`.trim() });
  }
}
codes.sort((a, b) => a.start - b.start);

/** The code object holding `pc` (the latest one starting at or below it that still covers it). */
function codeAt(pc: number): string {
  let lo = 0;
  let hi = codes.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (codes[mid]!.start <= pc) {
      at = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  for (let i = at; i >= 0 && i > at - 64; i--) if (codes[i]!.start <= pc && pc < codes[i]!.end) return codes[i]!.name;
  return "?";
}

let end = 0;
for (const m of misses) if (m.time > end) end = m.time;
const from = end - Number(opts.last) * 1e6;
const bySite = new Map<string, number>();
let total = 0;
for (const m of misses) {
  if (m.time < from) continue;
  total++;
  const key = `${m.type} ${codeAt(m.pc)} ${m.site}`;
  bySite.set(key, (bySite.get(key) ?? 0) + 1);
}
console.log(`${total} inline-cache misses in the last ${opts.last} s of ${file}`);
for (const [site, n] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top))) console.log(`${String(n).padStart(8)}  ${site}`);
