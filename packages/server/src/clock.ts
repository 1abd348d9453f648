// The one source of "now". Everything time-dependent (expiry, grace, idempotency retention, stamps)
// reads it, so tests move time with a ManualClock instead of sleeping.
export interface Clock {
  now(): number; // epoch milliseconds
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  constructor(private ms: number = Date.parse("2026-01-01T00:00:00.000Z")) {}
  now(): number {
    return this.ms;
  }
  set(iso: string | number): void {
    this.ms = typeof iso === "number" ? iso : Date.parse(iso);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  advanceDays(days: number): void {
    this.ms += days * 86_400_000;
  }
}

export const DAY_MS = 86_400_000;
export const MINUTE_MS = 60_000;
