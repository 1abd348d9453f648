// Helpers for the reliability tests and the soak run: real `licensekit serve` child processes (one
// process, or `--workers N`), their captured output, plain HTTP calls on a fresh connection each,
// a bounded-concurrency runner, and raw reads of the database behind them (SQLite file or
// PostgreSQL) for reconciling what the answers said with what was stored.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import pg from "pg";

export const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Limits high enough that no bounded run meets them (the harness does the same). */
export const HIGH_LIMITS: Record<string, string> = {
  LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "1000000",
  LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "1000000",
  LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "1000000",
};

export interface ServeOptions {
  env: Record<string, string>;
  /** `serve --workers N` when > 1. */
  workers?: number;
  /** Listen on this port and wait for /healthz instead of reading the port from the log (any log level). */
  port?: number;
  startTimeoutMs?: number;
}

/** A running `licensekit serve` with everything it wrote to stdout and stderr. */
export class ServeProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  port = 0;
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    child.stdout!.setEncoding("utf8");
    child.stderr!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      this.stdout += d;
    });
    child.stderr!.on("data", (d: string) => {
      this.stderr += d;
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every output line that parses as a JSON log line. */
  logLines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of `${this.stdout}\n${this.stderr}`.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
    return out;
  }

  static async start(opts: ServeOptions): Promise<ServeProcess> {
    const workers = opts.workers ?? 1;
    const args = ["--import", "tsx", "src/cli.ts", "serve", ...(workers > 1 ? ["--workers", String(workers)] : [])];
    const env: NodeJS.ProcessEnv = { ...process.env, LICENSEKIT_HOST: "127.0.0.1", LICENSEKIT_PORT: String(opts.port ?? 0), ...opts.env };
    const p = new ServeProcess(spawn(process.execPath, args, { cwd: serverDir, env }));
    // One process announces "licensekit listening" with its port; a cluster's primary announces
    // "licensekit cluster ready" once every worker listens.
    const ready = workers > 1 ? /"port":(\d+),[^\n]*"msg":"licensekit cluster ready"/ : /"port":(\d+),[^\n]*"msg":"licensekit listening"/;
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    for (;;) {
      const m = opts.port ? null : ready.exec(p.stdout);
      if (m) {
        p.port = Number(m[1]);
        return p;
      }
      if (opts.port && (await call(`http://127.0.0.1:${opts.port}`, "/healthz", { timeoutMs: 1000 }).catch(() => null))?.status === 200) {
        p.port = opts.port;
        return p;
      }
      if (p.child.exitCode !== null || Date.now() > deadline) {
        p.child.kill("SIGKILL");
        throw new Error(`server did not start (exit ${p.child.exitCode}): ${p.stdout.slice(-2000)} ${p.stderr.slice(-2000)}`);
      }
      await sleep(50);
    }
  }

  /** SIGTERM and wait for the exit code (SIGKILL after the deadline). */
  async stop(deadlineMs = 20_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), deadlineMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Resident set size in bytes (Linux /proc), 0 when unknown. */
  rssBytes(pid = this.pid): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = http.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are inspected field by field
  json: any;
  ms: number;
}

export interface CallOptions {
  method?: string;
  auth?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** One request on its own connection (no keep-alive), so a cluster's round-robin spreads them. */
export function call(base: string, url: string, o: CallOptions = {}): Promise<Answer> {
  const data = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  const method = o.method ?? (data === undefined ? "GET" : "POST");
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const u = new URL(url, base);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method,
        path: u.pathname + u.search,
        agent: false,
        timeout: o.timeoutMs ?? 30_000,
        headers: {
          ...(o.auth ? { authorization: o.auth } : {}),
          ...(data !== undefined ? { "content-type": "application/json" } : {}),
          ...o.headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => {
          let json: unknown = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: performance.now() - started });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on("error", reject);
    req.end(data);
  });
}

/** Runs `count` tasks with at most `inFlight` at a time; results in task order. */
export async function bounded<T>(count: number, inFlight: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  return results;
}

/** Raw SQL reads of the database behind a server (`sqlite:<file>` or `postgres://…`). */
export async function withDb<T>(url: string, fn: (query: (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  if (url.startsWith("sqlite:")) {
    const db = new Database(url.slice("sqlite:".length), { readonly: true, fileMustExist: true });
    try {
      return await fn(async (sql, params = []) => db.prepare(sql.replace(/\$\d+/g, "?")).all(...(params as never[])) as Record<string, unknown>[]);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(async (sql, params = []) => (await client.query(sql, params as unknown[])).rows);
  } finally {
    await client.end();
  }
}

/** Every table name of the application's schema. */
export async function tableNames(url: string): Promise<string[]> {
  return withDb(url, async (q) => {
    const rows = url.startsWith("sqlite:")
      ? await q("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      : await q("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name");
    return rows.map((r) => String(r.name));
  });
}

/** An admin client for the management API of a running server. */
export function admin(base: string, token: string) {
  return async (url: string, body?: unknown, o: CallOptions = {}) => {
    const r = await call(base, `/api/v1${url}`, { auth: `Bearer ${token}`, body, ...o });
    if (r.status < 200 || r.status > 299) throw new Error(`${o.method ?? (body === undefined ? "GET" : "POST")} ${url} → ${r.status} ${r.text}`);
    return r.json?.data;
  };
}
