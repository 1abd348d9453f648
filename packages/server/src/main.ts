// Process entry for `licensekit serve`: config → services → app → listen; graceful shutdown on
// SIGTERM/SIGINT within LICENSEKIT_SHUTDOWN_TIMEOUT_MS (new connections refused, in-flight requests
// and webhook attempts finish, batched stamps and counts are flushed, the database is closed, exit 0).
// With more than one worker this process is the cluster primary (cluster.ts), and each worker it
// forks comes back here to serve.
import cluster from "node:cluster";
import { buildApp, startBackgroundWork } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { createServices, StartupError } from "./services.js";

export async function serve(config: Config): Promise<void> {
  if (config.workers > 1 && cluster.isPrimary) {
    const { servePrimary } = await import("./cluster.js");
    return servePrimary(config);
  }
  // A worker finds the database migrated and bootstrapped by the primary; the primary announces.
  const worker = cluster.isWorker && config.workers > 1;
  const { services, bootstrap } = await createServices(config);
  const app = await buildApp(services);
  startBackgroundWork(app);
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  app.log.info({ host: config.host, port, database: config.database.engine, kid: services.keyring.activeKid }, "licensekit listening");

  if (worker) {
    // the primary prints the token (or the warning) once for the whole cluster
  } else if (bootstrap.outcome === "created" && bootstrap.generated) {
    printBootstrapToken(bootstrap.token);
  } else if (bootstrap.outcome === "already_done" && bootstrap.configuredTokenKnown === false) {
    app.log.warn("LICENSEKIT_BOOTSTRAP_TOKEN is ignored: this database was bootstrapped before with another token");
  }

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    const started = Date.now();
    const deadlineMs = config.shutdownTimeoutMs;
    const graceMs = shutdownGraceMs(deadlineMs);
    app.log.info({ signal, deadline_ms: deadlineMs }, "shutting down");
    const timer = setTimeout(() => {
      app.log.error({ deadline_ms: deadlineMs }, "shutdown timed out; exiting");
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    // Requests still running at the end of the grace lose their connections, so the batched
    // counters are still flushed and the database closed before the deadline.
    const cut = setTimeout(() => {
      app.log.warn({ grace_ms: graceMs }, "requests still running at the end of the shutdown grace; closing their connections");
      app.server.closeAllConnections();
    }, graceMs);
    cut.unref();
    // No new webhook attempts from now on; those in flight may finish within the grace (the app's
    // onClose waits for this same stop before flushing and closing the database).
    void services.webhookDelivery.stop(graceMs);
    // app.close(): the listening socket closes at once (new connections are refused), in-flight
    // requests finish, then onClose flushes batched stamps, counts and request statistics and closes the database.
    app.close().then(
      () => {
        clearTimeout(cut);
        app.log.info({ signal, ms: Date.now() - started }, "licensekit stopped");
        process.exit(0);
      },
      (err) => {
        app.log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // A worker whose primary is gone (even killed) stops too, the same graceful way.
  if (worker) process.on("disconnect", () => shutdown("disconnect"));
}

/** Time in-flight work gets on shutdown: the deadline less a margin (a quarter, at most 2 s) to flush and close. */
export function shutdownGraceMs(deadlineMs: number): number {
  return deadlineMs - Math.min(2000, Math.floor(deadlineMs / 4));
}

/** Printed once, to stdout only, never logged: this is the only time the token is visible. */
export function printBootstrapToken(token: string): void {
  process.stdout.write(`\nLicenseKit bootstrap admin token (shown once, store it now):\n\n  ${token}\n\nUse it as: Authorization: Bearer <token>\n\n`);
}

/** Prints a one-line reason for a start-up failure and returns the exit code. */
export function startupFailure(err: unknown): number {
  if (err instanceof ConfigError) {
    process.stderr.write(`licensekit: invalid configuration: ${err.message}\n`);
    return 2;
  }
  if (err instanceof StartupError) {
    process.stderr.write(`licensekit: cannot start: ${err.message}\n`);
    return 1;
  }
  const e = err as { code?: string; message?: string };
  process.stderr.write(`licensekit: cannot start: ${e?.code ? `${e.code}: ` : ""}${e?.message ?? String(err)}\n`);
  return 1;
}

export { loadConfig };
