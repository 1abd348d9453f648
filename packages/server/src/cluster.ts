// `licensekit serve --workers N` (N > 1): this process becomes the cluster primary. It does the
// one-time start-up work itself — migrations, the master-key check, the first signing key, the
// bootstrap admin key — so workers never race on a first start, then forks N workers that each run
// the ordinary `serve` (main.ts) on the same port (node:cluster shares the listening socket). A
// worker that dies unexpectedly is replaced after a back-off; SIGTERM/SIGINT are forwarded to the
// workers, which drain in-flight requests and flush their batched side effects, and the primary
// exits 0 once every worker has exited cleanly (SIGKILL for any still running at the deadline).
import cluster, { type Worker } from "node:cluster";
import os from "node:os";
import { bootstrapAdminKey } from "./bootstrap.js";
import { systemClock } from "./clock.js";
import type { Config, LogLevel } from "./config.js";
import { CredentialHasher } from "./crypto/credential-hash.js";
import { Keyring } from "./crypto/signing-keys.js";
import { printBootstrapToken } from "./main.js";
import { checkedMasterKey, openMigratedStore } from "./services.js";

export interface ClusterTimings {
  /** First restart delay after an unexpected exit; doubles per consecutive crash. */
  restartBaseMs: number;
  restartMaxMs: number;
  /** A worker that served this long before dying resets the back-off. */
  stableAfterMs: number;
  /** After forwarding a shutdown signal, workers still running this long are killed. */
  shutdownDeadlineMs: number;
}

// A worker gives itself LICENSEKIT_SHUTDOWN_TIMEOUT_MS (10 s by default) to drain (main.ts); the
// primary waits 5 s longer than that before SIGKILL (servePrimary).
export const DEFAULT_TIMINGS: ClusterTimings = { restartBaseMs: 500, restartMaxMs: 30_000, stableAfterMs: 30_000, shutdownDeadlineMs: 15_000 };

/** The primary's deadline: the workers' own shutdown timeout plus 5 s. */
export function primaryShutdownDeadlineMs(config: Pick<Config, "shutdownTimeoutMs">): number {
  return config.shutdownTimeoutMs + 5000;
}

/** Delay before replacing a worker after `crashes` consecutive unexpected exits (1 = the first). */
export function restartDelay(crashes: number, t: Pick<ClusterTimings, "restartBaseMs" | "restartMaxMs"> = DEFAULT_TIMINGS): number {
  return Math.min(t.restartMaxMs, t.restartBaseMs * 2 ** Math.max(0, crashes - 1));
}

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Number.POSITIVE_INFINITY };

/** JSON lines in the same shape as the workers' (pino) logs. */
function primaryLogger(level: LogLevel) {
  const min = LEVELS[level];
  const hostname = os.hostname();
  const write = (lvl: Exclude<LogLevel, "silent">, fields: Record<string, unknown>, msg: string) => {
    if (LEVELS[lvl] < min) return;
    process.stdout.write(`${JSON.stringify({ level: LEVELS[lvl], time: Date.now(), pid: process.pid, hostname, role: "primary", ...fields, msg })}\n`);
  };
  return {
    info: (fields: Record<string, unknown>, msg: string) => write("info", fields, msg),
    warn: (fields: Record<string, unknown>, msg: string) => write("warn", fields, msg),
    error: (fields: Record<string, unknown>, msg: string) => write("error", fields, msg),
  };
}

/** Runs the one-time start-up work, then the workers; resolves once they all run (the primary then lives on its event handlers). */
export async function servePrimary(config: Config, timings: ClusterTimings = { ...DEFAULT_TIMINGS, shutdownDeadlineMs: primaryShutdownDeadlineMs(config) }): Promise<void> {
  const log = primaryLogger(config.logLevel);

  // Everything that must happen once per database, before any worker exists. Failures here are
  // start-up failures of the command itself (cli.ts prints them and exits non-zero).
  const store = await openMigratedStore(config);
  let bootstrap: Awaited<ReturnType<typeof bootstrapAdminKey>>;
  try {
    const master = await checkedMasterKey(config, store, systemClock);
    await new Keyring(store, master, systemClock).ensureActiveKey();
    bootstrap = await bootstrapAdminKey(store, new CredentialHasher(master), systemClock, config.bootstrapToken);
  } finally {
    await store.close();
  }

  const target = config.workers;
  const startedAt = new Map<Worker, number>();
  const listening = new Set<Worker>();
  let ready = false;
  let closing = false;
  let crashes = 0;
  let exitCode = 0;
  const pendingRestarts = new Set<NodeJS.Timeout>();

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
    return worker;
  };

  const finish = () => {
    if (Object.keys(cluster.workers ?? {}).length > 0 || pendingRestarts.size > 0) return;
    log.info({ exit_code: exitCode }, "licensekit stopped");
    process.exit(exitCode);
  };

  const shutdown = (signal: string, code = 0) => {
    if (closing) return;
    closing = true;
    exitCode = code;
    for (const t of pendingRestarts) clearTimeout(t);
    pendingRestarts.clear();
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, "shutting down workers");
    const killSignal = signal === "SIGINT" ? "SIGINT" : "SIGTERM";
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(killSignal);
    const deadline = setTimeout(() => {
      const left = Object.values(cluster.workers ?? {});
      log.error({ workers: left.map((w) => w?.process.pid) }, "workers did not stop in time; killing them");
      exitCode = 1;
      for (const w of left) w?.process.kill("SIGKILL");
    }, timings.shutdownDeadlineMs);
    deadline.unref();
    finish();
  };

  cluster.on("listening", (worker, address) => {
    listening.add(worker);
    if (ready || listening.size < target) return;
    ready = true;
    log.info({ workers: target, port: address.port, pids: [...listening].map((w) => w.process.pid) }, "licensekit cluster ready");
    if (bootstrap.outcome === "created" && bootstrap.generated) printBootstrapToken(bootstrap.token);
    else if (bootstrap.outcome === "already_done" && bootstrap.configuredTokenKnown === false) {
      log.warn({}, "LICENSEKIT_BOOTSTRAP_TOKEN is ignored: this database was bootstrapped before with another token");
    }
  });

  cluster.on("exit", (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
    const wasListening = listening.delete(worker);
    startedAt.delete(worker);
    if (closing) {
      if (code !== 0) exitCode = exitCode || 1;
      finish();
      return;
    }
    if (!ready && !wasListening) {
      // A worker that cannot even start (port taken, database unreachable) would fail again: stop.
      log.error({ worker_pid: worker.process.pid, code, signal }, "a worker failed to start; stopping");
      shutdown("startup-failure", code || 1);
      return;
    }
    crashes = lived >= timings.stableAfterMs ? 1 : crashes + 1;
    const delay = restartDelay(crashes, timings);
    log.error({ worker_pid: worker.process.pid, code, signal, restart_in_ms: delay }, "worker exited unexpectedly; replacing it");
    const timer = setTimeout(() => {
      pendingRestarts.delete(timer);
      if (!closing) fork();
    }, delay);
    pendingRestarts.add(timer);
  });

  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  log.info({ workers: target, database: config.database.engine }, "starting workers");
  for (let i = 0; i < target; i++) fork();
}
