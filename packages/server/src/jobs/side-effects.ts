// Batched side effects of the read-only hot path (D7): last-used stamps of API keys, last-seen and
// last-validated stamps of devices, and recorded runtime denials. They are collected in memory and
// written together every few seconds (and on shutdown), so a validation costs no write of its own.
import { type EventInput, recordEvent } from "../store/audit-events.js";
import type { Store } from "../store/db.js";

interface DeviceStamp {
  seenAt: number;
  validatedAt: number | null;
  ip: string | null;
}

export class SideEffects {
  #apiKeys = new Map<string, number>();
  #devices = new Map<string, DeviceStamp>();
  #events: EventInput[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly onFlush: (result: "ok" | "error", err?: unknown) => void = () => {},
  ) {}

  apiKeyUsed(id: string, at: number): void {
    const prev = this.#apiKeys.get(id);
    if (prev === undefined || prev < at) this.#apiKeys.set(id, at);
  }

  deviceSeen(id: string, at: number, validated: boolean, ip: string | null): void {
    const prev = this.#devices.get(id);
    this.#devices.set(id, {
      seenAt: Math.max(prev?.seenAt ?? 0, at),
      validatedAt: validated ? Math.max(prev?.validatedAt ?? 0, at) : (prev?.validatedAt ?? null),
      ip: ip ?? prev?.ip ?? null,
    });
  }

  event(e: EventInput): void {
    // Bounded: a flood of denials must not grow memory without limit between flushes.
    if (this.#events.length < 10_000) this.#events.push(e);
  }

  get pending(): number {
    return this.#apiKeys.size + this.#devices.size + this.#events.length;
  }

  start(intervalMs: number): void {
    this.stop();
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Writes everything collected so far. Concurrent calls share one flush. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.pending === 0) return;
    this.#flushing = this.#write().finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  async #write(): Promise<void> {
    const apiKeys = this.#apiKeys;
    const devices = this.#devices;
    const events = this.#events;
    this.#apiKeys = new Map();
    this.#devices = new Map();
    this.#events = [];
    try {
      await this.store.db.transaction().execute(async (trx) => {
        for (const [id, at] of apiKeys) {
          await trx
            .updateTable("api_keys")
            .set({ last_used_at: at })
            .where("id", "=", id)
            .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", at)]))
            .execute();
        }
        for (const [id, s] of devices) {
          await trx
            .updateTable("devices")
            .set({ last_seen_at: s.seenAt, ...(s.ip ? { ip_address: s.ip } : {}) })
            .where("id", "=", id)
            .where("last_seen_at", "<", s.seenAt)
            .execute();
          if (s.validatedAt !== null) {
            const at = s.validatedAt;
            await trx
              .updateTable("devices")
              .set({ last_validated_at: at })
              .where("id", "=", id)
              .where((eb) => eb.or([eb("last_validated_at", "is", null), eb("last_validated_at", "<", at)]))
              .execute();
          }
        }
        for (const e of events) await recordEvent(trx, e);
      });
      this.onFlush("ok");
    } catch (err) {
      // Put the stamps back (newest wins) so the next flush retries them.
      for (const [id, at] of apiKeys) this.apiKeyUsed(id, at);
      for (const [id, s] of devices) {
        this.deviceSeen(id, s.seenAt, false, s.ip);
        if (s.validatedAt !== null) this.deviceSeen(id, s.validatedAt, true, s.ip);
      }
      for (const e of events) this.event(e);
      this.onFlush("error", err);
    }
  }
}
