// Gauges read from the database when /metrics is scraped (prom-client calls `collect()` on each
// scrape): the webhook backlog and the live floating leases. Database state is shared by every
// process, so each process reports the cluster-wide value. A failed or slow read never fails the
// scrape: the gauge keeps its previous value and licensekit_scrape_errors_total{source} goes up.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Clock } from "../clock.js";
import type { Q, Store } from "../store/db.js";

/** A scrape waits at most this long for one database read. */
const SCRAPE_READ_TIMEOUT_MS = 2000;

export interface WebhookBacklog {
  pending: number;
  /** Age of the oldest pending delivery (ms), null when none is pending. */
  oldestPendingAgeMs: number | null;
}

/** Pending deliveries (inactive endpoints' included: they wait) and the age of the oldest one. */
export async function webhookBacklog(q: Q, now: number): Promise<WebhookBacklog> {
  const row = await q
    .selectFrom("webhook_deliveries")
    .select((eb) => [eb.fn.countAll<number | string>().as("n"), eb.fn.min("created_at").as("oldest")])
    .where("status", "=", "pending")
    .executeTakeFirstOrThrow();
  const oldest = row.oldest === null || row.oldest === undefined ? null : Number(row.oldest);
  return { pending: Number(row.n), oldestPendingAgeMs: oldest === null ? null : Math.max(0, now - oldest) };
}

/** Leases holding a seat now: active and not past expiry (expiry frees a seat without any job). */
export async function activeFloatingLeases(q: Q, now: number): Promise<number> {
  const row = await q
    .selectFrom("floating_leases")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("status", "=", "active")
    .where("expires_at", ">", now)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("database read timed out")), SCRAPE_READ_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface DatabaseGauges {
  webhookQueueDepth: Gauge;
  webhookOldestPendingAge: Gauge;
  floatingLeasesActive: Gauge;
  /** Reads that failed or timed out, by source table. */
  scrapeErrors: Counter<"source">;
}

export function registerDatabaseGauges(registry: Registry, store: Store, clock: Clock): DatabaseGauges {
  // Reads of the scrape in progress, each settling only after its failure (if any) was counted, so
  // the error counter (which waits for them) shows this scrape's failures in this scrape.
  const reads = new Set<Promise<void>>();
  const track = <T>(source: string, read: Promise<T>): Promise<T> => {
    const counted = read.then(
      () => {},
      () => {
        scrapeErrors.inc({ source });
      },
    );
    reads.add(counted);
    void counted.finally(() => reads.delete(counted));
    return read;
  };
  // The two webhook gauges share one read per scrape: prom-client starts every collect() before
  // any of them settles, so the second one finds the first one's read still in flight.
  let inFlight: Promise<WebhookBacklog> | null = null;
  const backlog = (): Promise<WebhookBacklog> => {
    if (inFlight) return inFlight;
    const read = track("webhook_deliveries", withTimeout(webhookBacklog(store.db, clock.now())));
    inFlight = read;
    const done = () => {
      if (inFlight === read) inFlight = null;
    };
    read.then(done, done);
    return read;
  };

  const scrapeErrors = new Counter({
    name: "licensekit_scrape_errors_total",
    help: "Database reads of scrape-time gauges that failed or timed out, by source table",
    labelNames: ["source"],
    registers: [registry],
    async collect() {
      // Every collect() of this scrape has started by the time this continues (see above).
      await null;
      await Promise.all([...reads]);
    },
  });

  return {
    webhookQueueDepth: new Gauge({
      name: "licensekit_webhook_queue_depth",
      help: "Webhook deliveries waiting to be sent (status pending), read from the database at scrape time",
      registers: [registry],
      async collect() {
        try {
          this.set((await backlog()).pending);
        } catch {
          // counted by track(); the gauge keeps its previous value
        }
      },
    }),
    webhookOldestPendingAge: new Gauge({
      name: "licensekit_webhook_oldest_pending_age_seconds",
      help: "Age of the oldest pending webhook delivery in seconds (0 when none is pending), read at scrape time",
      registers: [registry],
      async collect() {
        try {
          const b = await backlog();
          this.set(b.oldestPendingAgeMs === null ? 0 : b.oldestPendingAgeMs / 1000);
        } catch {
          // counted by track()
        }
      },
    }),
    floatingLeasesActive: new Gauge({
      name: "licensekit_floating_leases_active",
      help: "Floating leases holding a seat (active and unexpired), read from the database at scrape time",
      registers: [registry],
      async collect() {
        try {
          this.set(await track("floating_leases", withTimeout(activeFloatingLeases(store.db, clock.now()))));
        } catch {
          // counted by track()
        }
      },
    }),
    scrapeErrors,
  };
}
