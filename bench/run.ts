// `npm run bench` (issue 8): seeds a fresh database, starts the server the README way
// (`node packages/server/dist/cli.js serve`) as a separate process, loads each endpoint with
// autocannon from this process, loads the bare baseline (bench/baseline.ts, its own process) with the
// same settings, prints a table and writes bench/results/<ISO date>.json. Never part of `npm test`.
//
//   npm run bench                                  SQLite, 10,000 licenses, every endpoint, 10 s each, 64 connections
//   LICENSEKIT_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/lk_bench npm run bench   + PostgreSQL (db created and dropped)
//   npm run bench -- --licenses 1000000 --only validate     the big variant
//   npm run bench -- --workers 2                   `serve --workers 2`
//   npm run bench -- --only validate --profile      server under --cpu-prof; summary via bench/profile-summary.ts
//   npm run bench -- --workers 2 --only none --mixed  validate and activate (spread) at once, half the connections each
// Other flags: --duration <s>, --connections <n>, --engines sqlite,postgres, --label <text>, --no-warm
// (skip the unrecorded pass over every key that precedes validate and check), --floor (also load the
// baseline's handler as a Fastify route), --server-node-args=<flags> (node flags for the server only).
//   npm run bench -- --instructions --only validate,check   instructions per request under callgrind
// --instructions runs the baseline and the server under valgrind's callgrind and counts the
// instructions each executes per request (a fixed number of requests between a zeroing and a dump
// of the counters, after a warm-up): a figure that does not move with the machine's load, for
// comparing two versions of the code on a machine whose req/s are noisy. --instr-keep <dir> keeps the
// dumps (<dir>/<engine>/callgrind.<pid>.<round>) for `callgrind_annotate`.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import pg from "pg";
import type { DatabaseConfig } from "../packages/server/src/config.js";
import { buildIfNeeded, cli, freePort, root, sleep, stop, waitReady } from "./processes.js";
import { type Seeded, type SeededLicense, seed } from "./seed.js";


const { values: opts } = parseArgs({
  options: {
    licenses: { type: "string", default: "10000" },
    duration: { type: "string", default: "10" },
    connections: { type: "string" },
    workers: { type: "string" },
    engines: { type: "string" },
    only: { type: "string" },
    profile: { type: "boolean", default: false },
    label: { type: "string" },
    // One unrecorded pass over every license key before the validate/check runs, so they measure the
    // steady state (each key's state cached) rather than the first, all-miss pass. --no-warm skips it.
    warm: { type: "boolean", default: true },
    // A second baseline row: the same handler as a Fastify route (bench/baseline.ts, BASELINE_FRAMEWORK=fastify).
    floor: { type: "boolean", default: false },
    // After the scenarios: validate and activate (spread) loaded at the same time, half the
    // connections each, reported as two rows (how reads fare beside writes, e.g. across workers).
    mixed: { type: "boolean", default: false },
    // Extra node flags for the server process only, e.g. --server-node-args=--max-semi-space-size=32.
    "server-node-args": { type: "string", default: "" },
    // Instructions per request under callgrind instead of req/s (see the header).
    instructions: { type: "boolean", default: false },
    "instr-requests": { type: "string", default: "2000" },
    "instr-rounds": { type: "string", default: "3" },
    "instr-warm": { type: "string", default: "3000" },
    // Copy the callgrind dumps here before the run's files are removed (for callgrind_annotate).
    "instr-keep": { type: "string" },
  },
  allowNegative: true,
});
const LICENSES = Number(opts.licenses);
const DURATION = Number(opts.duration);
const INSTRUCTIONS = opts.instructions;
// Under callgrind every request takes ~50 times longer: fewer connections keep latencies far below
// autocannon's timeout.
const CONNECTIONS = Number(opts.connections ?? (INSTRUCTIONS ? 8 : 64));
/** How long the server or the baseline may take to start listening (node starts far slower under callgrind). */
const READY_TIMEOUT_MS = INSTRUCTIONS ? 600_000 : 120_000;
const WORKERS = opts.workers === undefined ? undefined : Number(opts.workers);
const PG_URL = process.env.LICENSEKIT_BENCH_PG_URL;
const ENGINES = (opts.engines ?? (PG_URL ? "sqlite,postgres" : "sqlite")).split(",") as ("sqlite" | "postgres")[];
const MASTER_KEY = "6c6b2d62656e63682d6d61737465722d6b65792d666f722d62656e636821212121".slice(0, 64);
const TOKEN = "lkm_BenchBenchBenchBenchBenchBenchBench0001";
const SERVER_PORT = await freePort();
const BASELINE_PORT = await freePort();
const RUN_TAG = Date.now().toString(36);
const log = (s: string) => process.stderr.write(`${s}\n`);

if (!Number.isInteger(LICENSES) || LICENSES < 10) throw new Error("--licenses: a whole number ≥ 10");
if (ENGINES.includes("postgres") && !PG_URL) throw new Error("--engines postgres needs LICENSEKIT_BENCH_PG_URL");

// ---------------------------------------------------------------------------------------------
// processes (start, readiness and stop: bench/processes.ts)

function serverEnv(databaseUrl: string, dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LICENSEKIT_DATABASE_URL: databaseUrl,
    LICENSEKIT_DATA_DIR: dataDir,
    LICENSEKIT_MASTER_KEY: MASTER_KEY,
    LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
    LICENSEKIT_HOST: "127.0.0.1",
    LICENSEKIT_PORT: String(SERVER_PORT),
    LICENSEKIT_LOG_LEVEL: "warn",
    LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "0",
    LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "0",
    LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "0",
  };
}

// ---------------------------------------------------------------------------------------------
// load

interface Row {
  engine: string;
  workers: number;
  licenses: number;
  endpoint: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  total: number;
  ratio?: number;
  p99Ratio?: number;
  /** CPU time of the serving process tree (server and its workers, or the baseline) per request, µs; Linux only. */
  cpuUsPerReq?: number;
  /** --instructions: instructions the serving process executed per request, one figure per round, and their median. */
  instructions?: { perRound: number[]; median: number; min: number };
  instrRatio?: number;
  /** The same for the smallest round of each (a round with a major garbage collection or a JIT pass in it counts more). */
  instrMinRatio?: number;
  /** One serving process only: the share of the run's license lookups the runtime cache answered, and its fill and the process's RSS at the end. */
  cache?: { hitShare: number; licenses: number; estimatedMb: number; rssMb: number | null };
}

interface Scenario {
  name: string;
  path: string;
  method?: "GET" | "POST";
  /** Returns headers and body for the i-th request. */
  make: (i: number) => { headers: Record<string, string>; body?: string };
}

function scenarios(s: Seeded, suffix: string): Scenario[] {
  const L = s.licenses;
  const half = Math.floor(L.length / 2);
  const leased = L.filter((l) => l.leaseToken);
  const pick = (i: number) => L[i % L.length]!;
  const lic = (l: SeededLicense, extra: Record<string, string> = {}) => ({
    authorization: `License ${l.key}`,
    "content-type": "application/json",
    ...extra,
  });
  const idem = (name: string, i: number) => ({ "idempotency-key": `${RUN_TAG}-${suffix}-${name}-${i}` });
  const bound = (l: SeededLicense) => JSON.stringify({ fingerprint: l.fingerprint });
  return [
    { name: "validate", path: "/api/v1/license/validate", make: (i) => ({ headers: lic(pick(i)), body: bound(pick(i)) }) },
    { name: "check", path: "/api/v1/license/check", make: (i) => ({ headers: lic(pick(i)), body: bound(pick(i)) }) },
    {
      name: "activate (spread)",
      path: "/api/v1/license/activate",
      make: (i) => ({ headers: lic(pick(i), idem("act", i)), body: JSON.stringify({ fingerprint: `act-${RUN_TAG}-${suffix}-${i}`, hostname: "bench" }) }),
    },
    {
      name: "activate (hot license)",
      path: "/api/v1/license/activate",
      make: (i) => ({ headers: lic(s.hot, idem("acthot", i)), body: JSON.stringify({ fingerprint: `hot-${RUN_TAG}-${suffix}-${i}`, hostname: "bench" }) }),
    },
    {
      name: "consume (spread)",
      path: "/api/v1/license/consume",
      make: (i) => ({
        headers: lic(pick(i), idem("con", i)),
        body: JSON.stringify({ fingerprint: pick(i).fingerprint, feature_code: s.featureCode, amount: 1, event_id: `${RUN_TAG}-${suffix}-c${i}` }),
      }),
    },
    {
      name: "consume (hot license)",
      path: "/api/v1/license/consume",
      make: (i) => ({
        headers: lic(s.hot, idem("conhot", i)),
        body: JSON.stringify({ fingerprint: s.hot.fingerprint, feature_code: s.featureCode, amount: 1, event_id: `${RUN_TAG}-${suffix}-h${i}` }),
      }),
    },
    {
      name: "floating heartbeat",
      path: "/api/v1/license/floating/heartbeat",
      make: (i) => {
        const l = leased[i % leased.length]!;
        return { headers: lic(l), body: JSON.stringify({ lease_token: l.leaseToken }) };
      },
    },
    {
      name: "floating checkout",
      path: "/api/v1/license/floating/checkout",
      make: (i) => {
        const l = L[half + (i % (L.length - half))]!;
        return { headers: lic(l, idem("co", i)), body: bound(l) };
      },
    },
    {
      name: "GET /licenses/{id}",
      path: "/api/v1/licenses/",
      method: "GET",
      make: (i) => ({ headers: { authorization: `Bearer ${TOKEN}`, "x-bench-path": `/api/v1/licenses/${pick(i).id}` } }),
    },
  ];
}

async function smoke(port: number, sc: Scenario): Promise<void> {
  const { headers, body } = sc.make(0);
  const p = headers["x-bench-path"] ?? sc.path;
  const h = { ...headers };
  delete h["x-bench-path"];
  if (h["idempotency-key"]) h["idempotency-key"] += "-smoke";
  const r = await fetch(`http://127.0.0.1:${port}${p}`, { method: sc.method ?? "POST", headers: h, body });
  const text = await r.text();
  if (!r.ok) log(`  smoke ${sc.name}: HTTP ${r.status} ${text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------
// CPU of the serving process tree, read from /proc (Linux): utime + stime of the process and its
// descendants (cluster workers), in clock ticks. req/s on a shared 2-core machine also reflects how
// much CPU autocannon took; CPU per request is the server's own cost.

const CLOCK_TICKS = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  return Number(r.stdout.trim()) || 100;
})();

function procStat(pid: number): { ppid: number; ticks: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // the fields after the parenthesised command name: state ppid ... utime(14) stime(15)
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

function treeCpuTicks(rootPid: number | undefined): number | null {
  if (rootPid === undefined || !fs.existsSync("/proc/self/stat")) return null;
  const all = new Map<number, { ppid: number; ticks: number }>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st) all.set(Number(name), st);
  }
  let ticks = 0;
  const wanted = new Set([rootPid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, st] of all) {
      if (!wanted.has(pid) && wanted.has(st.ppid)) {
        wanted.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of wanted) ticks += all.get(pid)?.ticks ?? 0;
  return ticks;
}

/** `first`: the index of the first request's body (scenarios with unique keys continue where a previous load stopped). */
async function load(port: number, sc: Scenario, amount?: number, servingPid?: number, first = 0, connections = CONNECTIONS): Promise<Omit<Row, "engine" | "workers" | "licenses">> {
  let n = first;
  const cpuBefore = treeCpuTicks(servingPid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    ...(amount !== undefined ? { amount } : { duration: DURATION }),
    requests: [
      {
        method: sc.method ?? "POST",
        path: sc.path,
        setupRequest: (req) => {
          const { headers, body } = sc.make(n++);
          const p = headers["x-bench-path"];
          if (p) {
            const h = { ...headers };
            delete h["x-bench-path"];
            return { ...req, path: p, headers: h };
          }
          return { ...req, headers, body };
        },
      },
    ],
  });
  const statusCodes: Record<string, number> = {};
  const stats = (result as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {};
  for (const [code, v] of Object.entries(stats)) statusCodes[code] = v.count;
  return {
    endpoint: sc.name,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
    total: result.requests.total,
    ...(cpuBefore !== null && result.requests.total > 0
      ? { cpuUsPerReq: Math.round((((treeCpuTicks(servingPid) ?? cpuBefore) - cpuBefore) * 1e6) / CLOCK_TICKS / result.requests.total) }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// instructions per request (--instructions): the serving process runs under valgrind's callgrind;
// after a warm-up, each round zeroes its counters (`callgrind_control -z`), sends a fixed number of
// requests and dumps the counters (`callgrind_control -d`); the dump's total over the number of
// requests is the round's figure. Every thread of the process counts (libuv's pool, V8's compiler
// and GC helpers, the checkpoint thread).

/** Starts `node <args>`, under callgrind with --instructions (its dumps go to outDir). */
function launch(args: string[], env: NodeJS.ProcessEnv, stdio: "inherit" | "ignore", outDir: string): ChildProcess {
  if (!INSTRUCTIONS) return spawn(process.execPath, args, { env, stdio: ["ignore", stdio, "inherit"] });
  const vg = ["--tool=callgrind", "--quiet", `--callgrind-out-file=${path.join(outDir, "callgrind.%p")}`];
  return spawn("valgrind", [...vg, process.execPath, ...args], { env, stdio: ["ignore", stdio, "inherit"] });
}

function callgrindControl(pid: number, command: "-z" | "-d"): void {
  const r = spawnSync("callgrind_control", [command, String(pid)], { encoding: "utf8" });
  if (r.status !== 0 || !/OK/.test(r.stdout)) throw new Error(`callgrind_control ${command} ${pid} failed: ${r.stdout}${r.stderr}`);
}

/** The total instruction count of the newest dump of process `pid`. */
async function lastDumpTotal(outDir: string, pid: number, dumpsBefore: number): Promise<{ total: number; dumps: number }> {
  const prefix = `callgrind.${pid}.`;
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const parts = fs.readdirSync(outDir).filter((f) => f.startsWith(prefix)).map((f) => Number(f.slice(prefix.length)));
    if (parts.length > dumpsBefore) {
      const text = fs.readFileSync(path.join(outDir, `${prefix}${Math.max(...parts)}`), "utf8");
      const m = /^summary: (\d+)/m.exec(text);
      if (m) return { total: Number(m[1]), dumps: parts.length };
    }
    await sleep(200);
  }
  throw new Error(`no callgrind dump from ${pid}`);
}

/** Copies the callgrind dumps of a run (one per round and process, `callgrind.<pid>.<n>`) to `dir`. */
function keepDumps(from: string, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(from)) if (f.startsWith("callgrind.")) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  log(`bench: callgrind dumps copied to ${dir} (callgrind_annotate <file>)`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Instructions per request of `sc` on the process `pid` (under callgrind), after a warm-up. */
async function countInstructions(port: number, sc: Scenario, pid: number, outDir: string): Promise<Omit<Row, "engine" | "workers" | "licenses">> {
  const perRequest = Number(opts["instr-requests"]);
  let at = Number(opts["instr-warm"]);
  await load(port, sc, at, undefined, 0);
  const perRound: number[] = [];
  let last: Omit<Row, "engine" | "workers" | "licenses"> | null = null;
  let dumps = 0;
  for (let r = 0; r < Number(opts["instr-rounds"]); r++) {
    callgrindControl(pid, "-z");
    last = await load(port, sc, perRequest, undefined, at);
    at += perRequest;
    callgrindControl(pid, "-d");
    const d = await lastDumpTotal(outDir, pid, dumps);
    dumps = d.dumps;
    // A round with failures or refusals counted a different path than the one named.
    if (last.total !== perRequest || last.errors + last.timeouts + last.non2xx > 0) {
      throw new Error(`${sc.name}: ${last.total} of ${perRequest} requests answered, ${last.errors} errors, ${last.timeouts} timeouts, ${last.non2xx} non-2xx`);
    }
    perRound.push(Math.round(d.total / perRequest));
    log(`  ${sc.name}: round ${r + 1}: ${perRound.at(-1)!.toLocaleString("en")} instructions per request`);
  }
  return { ...last!, instructions: { perRound, median: median(perRound), min: Math.min(...perRound) } };
}

/** The figures of one scenario: req/s under load, or instructions per request with --instructions. */
function measure(port: number, sc: Scenario, pid: number | undefined, outDir: string): Promise<Omit<Row, "engine" | "workers" | "licenses">> {
  return INSTRUCTIONS ? countInstructions(port, sc, pid!, outDir) : load(port, sc, undefined, pid);
}

// ---------------------------------------------------------------------------------------------
// databases

async function pgAdmin<T>(fn: (c: pg.Client, db: string) => Promise<T>): Promise<T> {
  const u = new URL(PG_URL!);
  const db = u.pathname.slice(1);
  if (!/^[a-z_][a-z0-9_]*$/.test(db)) throw new Error("LICENSEKIT_BENCH_PG_URL: the database name must be [a-z0-9_]");
  u.pathname = "/postgres";
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return await fn(c, db);
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------------------------------------
// one engine: fresh database, seed, baseline, server, every scenario

async function runEngine(engine: "sqlite" | "postgres", rows: Row[], meta: Record<string, unknown>): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `lk-bench-${engine}-`));
  let database: DatabaseConfig;
  if (engine === "sqlite") {
    const file = path.join(dataDir, "lk.db");
    database = { engine, url: `sqlite:${file}`, file };
  } else {
    await pgAdmin(async (c, db) => {
      await c.query(`drop database if exists ${db} with (force)`);
      await c.query(`create database ${db}`);
    });
    database = { engine, url: PG_URL!, poolSize: 10 };
  }
  const env = serverEnv(database.url, dataDir);
  const children: ChildProcess[] = [];
  try {
    const m = spawnSync(process.execPath, [cli, "migrate"], { env, encoding: "utf8" });
    if (m.status !== 0) throw new Error(`migrate failed: ${m.stderr}`);
    log(`[${engine}] seeding ${LICENSES.toLocaleString("en")} licenses...`);
    const seeded = await seed(database, Buffer.from(MASTER_KEY, "hex"), LICENSES, Math.min(10_000, Math.floor(LICENSES / 2)), log);
    log(`[${engine}] seeded in ${(seeded.seedMs / 1000).toFixed(1)} s`);
    meta[`seed_ms_${engine}`] = seeded.seedMs;

    const only = opts.only?.split(",").map((s) => s.trim());
    const wanted = (name: string) => !only || only.some((o) => name.startsWith(o));

    // the bare baseline, same tool and settings
    const keysFile = path.join(dataDir, "keys.tsv");
    fs.writeFileSync(keysFile, seeded.licenses.map((l) => `${l.key}\t${l.id}\t${l.deviceId}\t${l.fingerprint}\n`).join(""));
    const baseEnv = { ...process.env, BASELINE_PORT: String(BASELINE_PORT), BASELINE_MASTER_KEY: MASTER_KEY, BASELINE_KEYS_FILE: keysFile, BASELINE_EXPIRES_AT: String(seeded.expiresAt) };
    const spawnBaseline = (extra: Record<string, string> = {}) => {
      const child = launch(["--import", "tsx", path.join(root, "bench/baseline.ts")], { ...baseEnv, ...extra }, "ignore", dataDir);
      children.push(child);
      return child;
    };
    const base = spawnBaseline();
    await waitBaseline(base);
    const baseSc: Scenario = {
      name: "baseline (node:http)",
      path: "/validate",
      make: (i) => {
        const l = seeded.licenses[i % seeded.licenses.length]!;
        return { headers: { authorization: `License ${l.key}`, "content-type": "application/json" }, body: JSON.stringify({ fingerprint: l.fingerprint }) };
      },
    };
    await smoke(BASELINE_PORT, baseSc);
    log(`[${engine}] load: ${baseSc.name}`);
    const baseline = { engine, workers: WORKERS ?? 1, licenses: LICENSES, ...(await measure(BASELINE_PORT, baseSc, base.pid, dataDir)) };
    rows.push(baseline);
    await stop(base);
    if (opts.floor) {
      const floor = spawnBaseline({ BASELINE_FRAMEWORK: "fastify" });
      await waitBaseline(floor);
      const floorSc = { ...baseSc, name: "baseline handler in Fastify" };
      await smoke(BASELINE_PORT, floorSc);
      log(`[${engine}] load: ${floorSc.name}`);
      const r = await measure(BASELINE_PORT, floorSc, floor.pid, dataDir);
      rows.push({ engine, workers: WORKERS ?? 1, licenses: LICENSES, ...r, ...ratios(r, baseline) });
      await stop(floor);
    }

    // the server, the README way
    const nodeArgs = [...opts["server-node-args"].split(" ").filter(Boolean), ...(opts.profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(root, "bench/results/profiles")}`] : [])];
    const serveArgs = WORKERS !== undefined ? ["serve", "--workers", String(WORKERS)] : ["serve"];
    const server = launch([...nodeArgs, cli, ...serveArgs], env, "inherit", dataDir);
    children.push(server);
    await waitReady(`http://127.0.0.1:${SERVER_PORT}/readyz`, server, READY_TIMEOUT_MS);
    for (const sc of scenarios(seeded, `${engine}${WORKERS ?? 1}`)) {
      if (!wanted(sc.name)) continue;
      await smoke(SERVER_PORT, sc);
      if (opts.warm && (sc.name === "validate" || sc.name === "check")) {
        log(`[${engine}] warm-up: ${sc.name}, one pass over ${LICENSES} keys (not recorded)`);
        await load(SERVER_PORT, sc, LICENSES);
      }
      log(`[${engine}] load: ${sc.name}`);
      const single = (WORKERS ?? 1) === 1;
      const cacheBefore = single ? await cacheStats() : null;
      const r = await measure(SERVER_PORT, sc, server.pid, dataDir);
      const cacheAfter = single ? await cacheStats() : null;
      const lookups = cacheBefore && cacheAfter ? cacheAfter.hit + cacheAfter.miss - cacheBefore.hit - cacheBefore.miss : 0;
      rows.push({
        engine,
        workers: WORKERS ?? 1,
        licenses: LICENSES,
        ...r,
        ...(cacheBefore && cacheAfter && lookups > 0
          ? {
              cache: {
                hitShare: round((cacheAfter.hit - cacheBefore.hit) / lookups),
                licenses: cacheAfter.licenses,
                estimatedMb: Math.round(cacheAfter.bytes / 2 ** 20),
                rssMb: rssMb(server.pid),
              },
            }
          : {}),
        ...ratios(r, baseline),
      });
    }
    if (opts.mixed && !INSTRUCTIONS) {
      // Each load's CPU per request is not its own here (both share the server), so none is reported.
      const both = scenarios(seeded, `${engine}${WORKERS ?? 1}mixed`);
      const reads = both.find((sc) => sc.name === "validate")!;
      const writes = both.find((sc) => sc.name === "activate (spread)")!;
      const half = Math.max(1, Math.floor(CONNECTIONS / 2));
      if (opts.warm) await load(SERVER_PORT, reads, LICENSES);
      log(`[${engine}] load: validate and activate (spread) at once, ${half} connections each`);
      const [r, w] = await Promise.all([load(SERVER_PORT, reads, undefined, undefined, 0, half), load(SERVER_PORT, writes, undefined, undefined, 0, half)]);
      for (const [x, name] of [
        [r, "validate, beside activate"],
        [w, "activate (spread), beside validate"],
      ] as const) {
        rows.push({ engine, workers: WORKERS ?? 1, licenses: LICENSES, ...x, endpoint: name, ...ratios(x, baseline) });
      }
    }
    await stop(server);
  } finally {
    for (const c of children) await stop(c);
    if (engine === "postgres") await pgAdmin((c, db) => c.query(`drop database if exists ${db} with (force)`)).catch((e) => log(`drop failed: ${e}`));
    if (INSTRUCTIONS && opts["instr-keep"]) keepDumps(dataDir, path.join(opts["instr-keep"], engine));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The runtime cache's counters from the server's /metrics (one serving process). */
async function cacheStats(): Promise<{ hit: number; miss: number; licenses: number; bytes: number } | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${SERVER_PORT}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
    const stats = {
      hit: value(/^licensekit_runtime_cache_lookups_total\{result="hit"\} (\d+)$/m),
      miss: value(/^licensekit_runtime_cache_lookups_total\{result="miss"\} (\d+)$/m),
      licenses: value(/^licensekit_runtime_cache_licenses (\d+)$/m),
      bytes: value(/^licensekit_runtime_cache_bytes (\d+)$/m),
    };
    return Object.values(stats).every(Number.isFinite) ? stats : null;
  } catch {
    return null;
  }
}

/** Resident memory of a process in MiB, from /proc (Linux); null elsewhere. */
function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? null : Math.round(Number(kb) / 1024);
  } catch {
    return null;
  }
}

async function waitBaseline(child: ChildProcess): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`baseline exited with ${child.exitCode}`);
    try {
      await fetch(`http://127.0.0.1:${BASELINE_PORT}/`, { method: "POST", body: "{}" });
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("baseline not ready");
}

const round = (x: number) => Math.round(x * 100) / 100;

function ratios(r: Pick<Row, "rps" | "p99" | "instructions">, baseline: Pick<Row, "rps" | "p99" | "instructions">): Pick<Row, "ratio" | "p99Ratio" | "instrRatio" | "instrMinRatio"> {
  return {
    ratio: round(r.rps / baseline.rps),
    p99Ratio: round(r.p99 / Math.max(1, baseline.p99)),
    ...(r.instructions && baseline.instructions
      ? { instrRatio: round(r.instructions.median / baseline.instructions.median), instrMinRatio: round(r.instructions.min / baseline.instructions.min) }
      : {}),
  };
}

function instructionTable(rows: Row[]): string {
  const lines = [
    "| engine | licenses | endpoint | instructions per request (median) | smallest round | rounds | ratio to baseline (median) | ratio (smallest) |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    if (!r.instructions) continue;
    const rounds = r.instructions.perRound.map((x) => x.toLocaleString("en")).join(", ");
    const cells = [r.engine, r.licenses.toLocaleString("en"), r.endpoint, r.instructions.median.toLocaleString("en"), r.instructions.min.toLocaleString("en"), rounds];
    lines.push(`| ${cells.join(" | ")} | ${(r.instrRatio ?? 1).toFixed(2)} | ${(r.instrMinRatio ?? 1).toFixed(2)} |`);
  }
  return lines.join("\n");
}

function table(rows: Row[]): string {
  const head = ["engine", "workers", "licenses", "endpoint", "req/s", "p50 ms", "p99 ms", "errors", "non-2xx", "ratio", "p99 ratio", "CPU µs/req", "cache hits", "RSS MB"];
  const body = rows.map((r) => [
    r.engine,
    String(r.workers),
    r.licenses.toLocaleString("en"),
    r.endpoint,
    r.rps.toLocaleString("en"),
    String(r.p50),
    String(r.p99),
    String(r.errors + r.timeouts),
    r.non2xx === 0 ? "0" : `${r.non2xx} (${Object.entries(r.statusCodes).filter(([c]) => !c.startsWith("2")).map(([c, n]) => `${c}×${n}`).join(" ")})`,
    r.ratio === undefined ? "1.00" : r.ratio.toFixed(2),
    r.p99Ratio === undefined ? "1.00" : r.p99Ratio.toFixed(2),
    r.cpuUsPerReq === undefined ? "–" : String(r.cpuUsPerReq),
    r.cache === undefined ? "–" : `${Math.round(r.cache.hitShare * 100)} %`,
    r.cache?.rssMb == null ? "–" : r.cache.rssMb.toLocaleString("en"),
  ]);
  const lines = [head, ...body];
  const md = lines.map((l) => `| ${l.join(" | ")} |`);
  md.splice(1, 0, `|${head.map(() => "---").join("|")}|`);
  return md.join("\n");
}

async function main(): Promise<void> {
  buildIfNeeded(log);
  fs.mkdirSync(path.join(root, "bench/results"), { recursive: true });
  const started = new Date();
  const meta: Record<string, unknown> = {
    date: started.toISOString(),
    label: opts.label ?? null,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().map((c) => c.model),
    cpu_count: os.cpus().length,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    loadavg_at_start: os.loadavg().map(round),
    settings: { licenses: LICENSES, duration_s: DURATION, connections: CONNECTIONS, workers: WORKERS ?? 1, engines: ENGINES, only: opts.only ?? null, profile: opts.profile, warm: opts.warm, floor: opts.floor, mixed: opts.mixed, server_node_args: opts["server-node-args"] || null, ...(INSTRUCTIONS ? { instructions: { requests_per_round: Number(opts["instr-requests"]), rounds: Number(opts["instr-rounds"]), warm_up_requests: Number(opts["instr-warm"]) } } : {}) },
    tool: INSTRUCTIONS
      ? "autocannon 9 sends a fixed number of requests; the serving process runs under valgrind --tool=callgrind, which counts its instructions"
      : "autocannon 9, in the bench process; server and baseline are separate processes",
  };
  const rows: Row[] = [];
  for (const engine of ENGINES) await runEngine(engine, rows, meta);
  meta.loadavg_at_end = os.loadavg().map(round);
  const out = path.join(root, "bench/results", `${started.toISOString().replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(out, `${JSON.stringify({ meta, rows }, null, 2)}\n`);
  process.stdout.write(`\nload average at start ${JSON.stringify(meta.loadavg_at_start)}, at end ${JSON.stringify(meta.loadavg_at_end)}\n${INSTRUCTIONS ? instructionTable(rows) : table(rows)}\n\nwritten: ${path.relative(root, out)}\n`);
}

await main();
