// `licensekit serve --workers 2` as a real process (issue 8 item 4): both workers answer, limits
// hold across processes, a suspend through one worker is honoured by every worker (within 1 s), a killed worker
// is replaced, and SIGTERM to the primary stops everything with exit code 0. Which worker answered
// is read from the request log lines' `pid`; every request opens its own connection, so the
// cluster's round-robin spreads them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../src/config.js";
import { restartDelay } from "../src/cluster.js";
import { createTestDatabase, ENGINES, type TestDatabase } from "./helpers/engines.js";

const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TOKEN = `lkm_${"W".repeat(40)}`;

interface LogLine {
  pid: number;
  msg: string;
  route?: string;
  status?: number;
  port?: number;
  pids?: number[];
  [k: string]: unknown;
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers
  json: any;
}

/** One request on its own connection (no keep-alive), so each may land on another worker. */
function call(port: number, method: string, url: string, auth?: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path: url,
        agent: false,
        timeout: 10_000,
        headers: { ...(auth ? { authorization: auth } : {}), ...(data ? { "content-type": "application/json" } : {}), ...headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on("error", reject);
    req.end(data);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Cluster {
  child!: ChildProcess;
  lines: LogLine[] = [];
  out = "";
  err = "";
  port = 0;
  workerPids: number[] = [];
  exit: Promise<number | null> = Promise.resolve(null);

  async start(env: NodeJS.ProcessEnv): Promise<void> {
    await this.startWaiting(env);
    const ready = await this.waitFor((l) => l.msg === "licensekit cluster ready", 60_000);
    this.port = ready.port as number;
    this.workerPids = ready.pids as number[];
  }

  async startWaiting(env: NodeJS.ProcessEnv): Promise<void> {
    this.child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve", "--workers", "2"], { cwd: serverDir, env });
    this.exit = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    let partial = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (d: string) => {
      this.out += d;
      partial += d;
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        if (!line.startsWith("{")) continue;
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          // not a log line
        }
      }
    });
    this.child.stderr!.on("data", (d) => {
      this.err += d;
    });
  }

  async waitFor(pred: (l: LogLine) => boolean, timeoutMs = 30_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`log line not seen (exit ${this.child.exitCode}); stdout: ${this.out.slice(-3000)} stderr: ${this.err.slice(-2000)}`);
      }
      await sleep(50);
    }
  }

  /** Distinct pids of the request log lines written since line `from`. */
  requestPids(from: number, route?: string): Set<number> {
    return new Set(
      this.lines
        .slice(from)
        .filter((l) => l.msg === "request" && (route === undefined || l.route === route))
        .map((l) => l.pid),
    );
  }
}

describe("LICENSEKIT_WORKERS / serve --workers settings", () => {
  it("defaults to 1, accepts 1..64, refuses anything else naming the setting", () => {
    assert.equal(loadConfig({}).workers, 1);
    assert.equal(loadConfig({ LICENSEKIT_WORKERS: "4" }).workers, 4);
    assert.equal(loadConfig({ LICENSEKIT_WORKERS: "64" }).workers, 64);
    for (const bad of ["0", "65", "two", "-1", "1.5"]) {
      assert.throws(() => loadConfig({ LICENSEKIT_WORKERS: bad }), (e: unknown) => e instanceof ConfigError && e.setting === "LICENSEKIT_WORKERS", bad);
    }
    assert.throws(
      () => loadConfig({ LICENSEKIT_WORKERS: "2", LICENSEKIT_DATABASE_URL: "sqlite::memory:" }),
      (e: unknown) => e instanceof ConfigError && e.setting === "LICENSEKIT_WORKERS",
    );
  });

  it("rate-limit buckets default to the shared database store whenever more than one process serves", () => {
    assert.equal(loadConfig({}).rateLimits.store, "memory");
    assert.equal(loadConfig({ LICENSEKIT_WORKERS: "2" }).rateLimits.store, "database");
    assert.equal(loadConfig({ LICENSEKIT_WORKERS: "2", LICENSEKIT_RATE_LIMIT_STORE: "memory" }).rateLimits.store, "memory");
    assert.equal(loadConfig({ LICENSEKIT_DATABASE_URL: "postgres://u@localhost/db" }).rateLimits.store, "database");
  });

  it("`serve --workers 0` is refused before anything starts, naming the flag (exit 2)", () => {
    const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "serve", "--workers", "0"], {
      cwd: serverDir,
      env: { ...process.env, LICENSEKIT_DATABASE_URL: "sqlite::memory:" },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(res.status, 2, res.stderr);
    assert.match(res.stderr, /invalid configuration: --workers: must be between 1 and 64/);
  });

  it("on a fresh database the primary prints the generated admin token exactly once, after the workers listen", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-workers-"));
    const c = new Cluster();
    const env: NodeJS.ProcessEnv = { ...process.env, LICENSEKIT_DATABASE_URL: `sqlite:${path.join(dir, "lk.db")}`, LICENSEKIT_PORT: "0", LICENSEKIT_LOG_LEVEL: "info" };
    delete env.LICENSEKIT_BOOTSTRAP_TOKEN;
    delete env.LICENSEKIT_MASTER_KEY;
    delete env.LICENSEKIT_DATA_DIR;
    delete env.LICENSEKIT_WORKERS;
    try {
      await c.start(env);
      await sleep(300);
      const tokens = c.out.match(/lkm_[A-Za-z0-9]{40}/g) ?? [];
      assert.equal(tokens.length, 1, c.out);
      assert.ok(c.out.indexOf(tokens[0]) > c.out.indexOf('"licensekit cluster ready"'));
      const list = await call(c.port, "GET", "/api/v1/products", `Bearer ${tokens[0]}`);
      assert.equal(list.status, 200);
      c.child.kill("SIGTERM");
      assert.equal(await c.exit, 0);
    } finally {
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("restarts back off exponentially up to a ceiling", () => {
    const t = { restartBaseMs: 500, restartMaxMs: 30_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 8, 20].map((n) => restartDelay(n, t)),
      [500, 1000, 2000, 4000, 30_000, 30_000],
    );
  });
});

for (const engine of ENGINES) {
  describe(`licensekit serve --workers 2 (real processes) [${engine}]`, () => {
    let db: TestDatabase;
    const c = new Cluster();

    before(async () => {
      db = await createTestDatabase(engine);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        LICENSEKIT_DATABASE_URL: db.url,
        LICENSEKIT_DATA_DIR: db.dir,
        LICENSEKIT_PORT: "0",
        LICENSEKIT_HOST: "127.0.0.1",
        LICENSEKIT_LOG_LEVEL: "info",
        LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
        LICENSEKIT_RATE_LIMIT_RUNTIME_BURST: "200",
        LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "1000",
      };
      delete env.LICENSEKIT_MASTER_KEY;
      delete env.LICENSEKIT_WORKERS;
      delete env.LICENSEKIT_RATE_LIMIT_STORE;
      await c.start(env);
    });

    after(async () => {
      if (c.child && c.child.exitCode === null && c.child.signalCode === null) {
        c.child.kill("SIGKILL");
        await c.exit;
      }
      for (const pid of c.lines.filter((l) => l.msg === "licensekit listening").map((l) => l.pid)) {
        if (alive(pid)) process.kill(pid, "SIGKILL");
      }
      await sleep(200);
      await db?.drop();
    });

    const admin = (method: string, url: string, body?: unknown) => call(c.port, method, url, `Bearer ${TOKEN}`, body);

    async function issue(maxActivations: number): Promise<{ id: string; key: string }> {
      const n = Math.random().toString(36).slice(2, 10);
      const product = await admin("POST", "/api/v1/products", { name: `P ${n}`, code: `p-${n}` });
      assert.equal(product.status, 201, JSON.stringify(product.json));
      const policy = await admin("POST", `/api/v1/products/${product.json.data.id}/policies`, {
        name: "Policy",
        code: `pol-${n}`,
        license_type: "perpetual",
        max_activations: maxActivations,
      });
      assert.equal(policy.status, 201, JSON.stringify(policy.json));
      const lic = await admin("POST", "/api/v1/licenses", { product_id: product.json.data.id, policy_id: policy.json.data.id });
      assert.equal(lic.status, 201, JSON.stringify(lic.json));
      return { id: lic.json.data.license.id, key: lic.json.data.license_key };
    }

    it("starts two workers on one port; the primary prints no generated token when one is configured", async () => {
      // The workers' own log lines travel through the stdout pipe and may arrive after "cluster ready".
      for (let i = 0; i < 100 && c.lines.filter((l) => l.msg === "licensekit listening").length < 2; i++) await sleep(50);
      assert.equal(c.workerPids.length, 2);
      assert.equal(new Set(c.workerPids).size, 2);
      assert.ok(!c.workerPids.includes(c.child.pid!), "workers are separate processes");
      assert.ok(!/bootstrap admin token/.test(c.out));
      const listening = c.lines.filter((l) => l.msg === "licensekit listening");
      assert.deepEqual(new Set(listening.map((l) => l.port)), new Set([c.port]));
    });

    it("40 concurrent activations over both workers against max_activations 5: exactly 5 succeed", async () => {
      const lic = await issue(5);
      const from = c.lines.length;
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => call(c.port, "POST", "/api/v1/license/activate", `License ${lic.key}`, { fingerprint: `w-fp-${i}` }, { "idempotency-key": `w-k-${i}` })),
      );
      const ok = results.filter((r) => r.status === 200);
      assert.equal(ok.length, 5, JSON.stringify(results.map((r) => r.status)));
      for (const r of results.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 409);
        assert.equal(r.json.error.code, "ACTIVATION_LIMIT_EXCEEDED");
      }
      assert.equal(new Set(ok.map((r) => r.json.data.device_id)).size, 5);
      const got = await admin("GET", `/api/v1/licenses/${lic.id}`);
      assert.equal(got.json.data.active_device_count, 5);
      await sleep(300); // the last request lines
      const pids = c.requestPids(from, "/api/v1/license/activate");
      assert.deepEqual(pids, new Set(c.workerPids), "both workers answered activations");
    });

    it("a suspend through the management API is honoured by every worker within one second", async () => {
      const lic = await issue(3);
      const before = await Promise.all(
        Array.from({ length: 4 }, () => call(c.port, "POST", "/api/v1/license/validate", `License ${lic.key}`, { fingerprint: "s-fp" })),
      );
      for (const r of before) assert.equal(r.status, 200, JSON.stringify(r.json));
      const suspended = await admin("POST", `/api/v1/licenses/${lic.id}/suspend`, {});
      assert.equal(suspended.status, 200, JSON.stringify(suspended.json));
      // Each worker caches license state; the change feed reaches the other worker within 1 s
      // (measured in test/reliability/runtime-cache-processes.test.ts).
      await sleep(1000);
      const from = c.lines.length;
      const afterSuspend: Answer[] = [];
      for (let i = 0; i < 20; i++) afterSuspend.push(await call(c.port, "POST", "/api/v1/license/validate", `License ${lic.key}`, { fingerprint: "s-fp" }));
      for (const r of afterSuspend) {
        assert.equal(r.status, 403, JSON.stringify(r.json));
        assert.equal(r.json.error.code, "LICENSE_INACTIVE");
      }
      await sleep(300);
      assert.deepEqual(c.requestPids(from, "/api/v1/license/validate"), new Set(c.workerPids), "both workers refused");
    });

    it("a worker killed with SIGKILL is replaced and requests keep succeeding", async () => {
      const [victim, survivor] = c.workerPids as [number, number];
      const from = c.lines.length;
      process.kill(victim, "SIGKILL");
      await c.waitFor((l) => l.msg === "worker exited unexpectedly; replacing it" && l.worker_pid === victim, 10_000, from);
      for (let i = 0; i < 6; i++) assert.equal((await call(c.port, "GET", "/healthz")).status, 200);
      const replaced = await c.waitFor((l) => l.msg === "licensekit listening" && l.pid !== survivor && l.pid !== victim, 30_000, from);
      assert.equal(replaced.port, c.port);
      assert.ok(!alive(victim));
      const fromServe = c.lines.length;
      for (let i = 0; i < 10; i++) {
        const r = await call(c.port, "POST", "/api/v1/products", `Bearer ${TOKEN}`, { name: `After ${i}`, code: `after-${Date.now()}-${i}` });
        assert.equal(r.status, 201, JSON.stringify(r.json));
      }
      await sleep(300);
      c.workerPids = [survivor, replaced.pid];
      assert.deepEqual(c.requestPids(fromServe), new Set(c.workerPids), "the replacement serves");
    });

    it("SIGTERM to the primary: workers drain and exit, the primary exits 0 within the deadline", async () => {
      const started = Date.now();
      c.child.kill("SIGTERM");
      const code = await Promise.race([c.exit, sleep(20_000).then(() => "timeout" as const)]);
      assert.equal(code, 0, `${c.err}`);
      assert.ok(Date.now() - started < 20_000);
      for (const pid of c.workerPids) assert.equal(alive(pid), false, `worker ${pid} left running`);
    });
  });
}
