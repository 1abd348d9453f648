// Shared by the fault tests in this folder: a real `licensekit serve` process (spawned through tsx
// like test/serve-process.test.ts), calls over loopback with a client timeout, and the setup of a
// license that can take a steady load of activations and consumes. Not a test file itself.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const TOKEN = "lkm_ReliabilityFaultToken0000000000000000";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface ServeProcess {
  child: ChildProcess;
  base: string;
  port: number;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines. */
  lines(): Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** The environment of a test server: our token, loopback, no rate limits (the load is ours), info logs. */
export function serveEnv(databaseUrl: string, dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LICENSEKIT_DATABASE_URL: databaseUrl,
    LICENSEKIT_DATA_DIR: dataDir,
    LICENSEKIT_BOOTSTRAP_TOKEN: TOKEN,
    LICENSEKIT_HOST: "127.0.0.1",
    LICENSEKIT_PORT: "0",
    LICENSEKIT_LOG_LEVEL: "info",
    LICENSEKIT_RATE_LIMIT_RUNTIME_PER_SECOND: "0",
    LICENSEKIT_RATE_LIMIT_MANAGEMENT_PER_SECOND: "0",
    LICENSEKIT_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: "0",
    ...extra,
  };
  delete env.LICENSEKIT_MASTER_KEY;
  delete env.LICENSEKIT_WORKERS;
  return env;
}

/** Starts `licensekit serve` and resolves once it logs "licensekit listening". */
export function startServe(env: NodeJS.ProcessEnv): Promise<ServeProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], { cwd: serverDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let partial = "";
  const parsed: Record<string, unknown>[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      child.kill("SIGKILL");
      reject(new Error(`server did not start: ${out.slice(-2000)} ${err.slice(-2000)}`));
    }, 60_000);
    child.stdout!.on("data", (d: string) => {
      out += d;
      partial += d;
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        if (!line.startsWith("{")) continue;
        try {
          const l = JSON.parse(line) as Record<string, unknown>;
          parsed.push(l);
          if (!done && l.msg === "licensekit listening") {
            done = true;
            clearTimeout(timer);
            const port = l.port as number;
            resolve({ child, base: `http://127.0.0.1:${port}`, port, stdout: () => out, stderr: () => err, lines: () => parsed, exited });
          }
        } catch {
          // not a log line
        }
      }
    });
    void exited.then(({ code, signal }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening: ${out.slice(-2000)} ${err.slice(-2000)}`));
    });
  });
}

/** Ends a process we started (if it still runs) with `signal` and waits for its exit. */
export async function stopServe(p: ServeProcess | undefined, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (!p) return;
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  await p.exited;
}

export interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
  json: any;
  text: string;
  ms: number;
}

/** One call with a client-side timeout; a timeout or a refused connection rejects. */
export async function call(
  base: string,
  method: string,
  url: string,
  opts: { auth?: string; body?: unknown; idempotencyKey?: string; timeoutMs?: number } = {},
): Promise<Answer> {
  const started = Date.now();
  const res = await fetch(base + url, {
    method,
    headers: {
      ...(opts.auth ? { authorization: opts.auth } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      ...(opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {}),
    },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, json, text, ms: Date.now() - started };
}

export interface LoadLicense {
  licenseId: string;
  key: string;
  featureId: string;
  /** The device every consume names (bound during setup). */
  consumeFingerprint: string;
}

/** A perpetual license with room for `maxActivations` devices and an unlimited metered feature `units`. */
export async function setupLoadLicense(base: string, maxActivations = 100_000): Promise<LoadLicense> {
  const admin = `Bearer ${TOKEN}`;
  const ok = (a: Answer, what: string) => {
    if (a.status < 200 || a.status > 299) throw new Error(`${what}: ${a.status} ${a.text}`);
    return a.json.data;
  };
  const n = Math.random().toString(36).slice(2, 10);
  const product = ok(await call(base, "POST", "/api/v1/products", { auth: admin, body: { name: `Load ${n}`, code: `load-${n}` } }), "product");
  const policy = ok(
    await call(base, "POST", `/api/v1/products/${product.id}/policies`, {
      auth: admin,
      body: { name: "Load", code: `load-${n}`, license_type: "perpetual", max_activations: maxActivations },
    }),
    "policy",
  );
  const lic = ok(await call(base, "POST", "/api/v1/licenses", { auth: admin, body: { product_id: product.id, policy_id: policy.id } }), "license");
  const feature = ok(await call(base, "POST", `/api/v1/products/${product.id}/features`, { auth: admin, body: { name: "Units", code: "units" } }), "feature");
  ok(await call(base, "POST", `/api/v1/licenses/${lic.license.id}/features`, { auth: admin, body: { feature_id: feature.id } }), "assign feature");
  const key = lic.license_key as string;
  ok(
    await call(base, "POST", "/api/v1/license/activate", { auth: `License ${key}`, body: { fingerprint: "consumer" }, idempotencyKey: `setup-${n}` }),
    "bind consumer",
  );
  return { licenseId: lic.license.id, key, featureId: feature.id, consumeFingerprint: "consumer" };
}

/** What one load request was and how it was answered (or that it failed at the transport). */
export interface LoadResult {
  kind: "activate" | "consume" | "validate";
  /** The fingerprint (activate) or event_id (consume). */
  ref: string;
  idempotencyKey: string;
  startedAt: number;
  endedAt: number;
  status: number | null;
  code: string | null;
  retryAfter: string | null;
  /** Transport failure (timeout, refused, reset) instead of an answer. */
  transportError: string | null;
}

/** One activation (a new fingerprint), one consume of 1 unit (a new event_id) or one validate (read-only, of the bound consumer device). */
export async function loadRequest(base: string, lic: LoadLicense, kind: LoadResult["kind"], ref: string, idempotencyKey: string): Promise<LoadResult> {
  const startedAt = Date.now();
  const body =
    kind === "activate"
      ? { fingerprint: ref }
      : kind === "consume"
        ? { fingerprint: lic.consumeFingerprint, feature_code: "units", amount: 1, event_id: ref }
        : { fingerprint: lic.consumeFingerprint };
  const request = { kind, ref, idempotencyKey, startedAt };
  try {
    const a = await call(base, "POST", `/api/v1/license/${kind}`, { auth: `License ${lic.key}`, body, idempotencyKey, timeoutMs: 5000 });
    return { ...request, endedAt: Date.now(), status: a.status, code: a.json?.error?.code ?? null, retryAfter: a.headers.get("retry-after"), transportError: null };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ...request, endedAt: Date.now(), status: null, code: null, retryAfter: null, transportError: `${e.name}: ${e.cause?.code ?? e.message}` };
  }
}

export const is2xx = (r: { status: number | null }) => r.status !== null && r.status >= 200 && r.status < 300;
