#!/usr/bin/env node
// `licensekit` — server operations: serve, migrate, keys rotate. (Management commands that talk to a
// running server over the API belong to packages/cli.)
import { Command } from "commander";
import { systemClock } from "./clock.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { Keyring } from "./crypto/signing-keys.js";
import { serve, startupFailure } from "./main.js";
import { checkedMasterKey, openMigratedStore } from "./services.js";
import { openStore } from "./store/db.js";
import { migrateToLatest } from "./store/migrator.js";

async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    process.exitCode = startupFailure(err);
  }
}

const program = new Command("licensekit").description("LicenseKit licensing server").showHelpAfterError();

/** The environment's settings, with `--workers` (when given) in place of LICENSEKIT_WORKERS. */
function serveConfig(workers: string | undefined): Config {
  if (workers === undefined) return loadConfig();
  try {
    return loadConfig({ ...process.env, LICENSEKIT_WORKERS: workers });
  } catch (err) {
    if (err instanceof ConfigError && err.setting === "LICENSEKIT_WORKERS") {
      throw new ConfigError("--workers", err.message.slice("LICENSEKIT_WORKERS: ".length));
    }
    throw err;
  }
}

program
  .command("serve")
  .description("start the HTTP server (applies migrations first)")
  .option("-w, --workers <n>", "worker processes sharing the port (1..64; default LICENSEKIT_WORKERS or 1)")
  .action((opts: { workers?: string }) => run(() => serve(serveConfig(opts.workers))));

program
  .command("migrate")
  .description("apply pending database migrations and exit")
  .action(() =>
    run(async () => {
      const store = await openStore(loadConfig().database);
      try {
        const applied = await migrateToLatest(store);
        process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
      } finally {
        await store.close();
      }
    }),
  );

const keys = program.command("keys").description("signing keys");
keys
  .command("rotate")
  .description("make a new Ed25519 signing key active and retire the current one (it stays published)")
  .action(() =>
    run(async () => {
      const config = loadConfig();
      const store = await openMigratedStore(config);
      try {
        const master = await checkedMasterKey(config, store, systemClock);
        const keyring = new Keyring(store, master, systemClock);
        const { kid, retired } = await keyring.rotate({ type: "system", id: "cli" });
        process.stdout.write(`active kid: ${kid}\n${retired ? `retired kid: ${retired}\n` : ""}`);
      } finally {
        await store.close();
      }
    }),
  );

await program.parseAsync(process.argv);
