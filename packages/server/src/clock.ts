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

const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
/** 10000-01-01T00:00:00.000Z: from here on toISOString writes a six-digit signed year. */
const FOUR_DIGIT_YEARS_END = 253_402_300_800_000;
/** "YYYY-MM-DDT" per UTC day number; a runtime answer names few days (today, the next check, expiries). */
const dayPrefixes = new Map<number, string>();

/**
 * `new Date(ms).toISOString()`, the same characters, without a Date per call: every runtime answer
 * carries three or four timestamps, and toISOString was a measurable part of validate. Whole
 * milliseconds of years 1970–9999 are formatted here (the day's prefix cached); anything else goes
 * to toISOString (which also throws the same RangeError for an invalid time).
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < FOUR_DIGIT_YEARS_END) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    if (dayPrefixes.size >= 1024) dayPrefixes.clear();
    prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    dayPrefixes.set(day, prefix);
  }
  let t = ms - day * DAY_MS;
  const milli = t % 1000;
  t = (t - milli) / 1000;
  const sec = t % 60;
  t = (t - sec) / 60;
  const min = t % 60;
  const hour = (t - min) / 60;
  return `${prefix}${TWO_DIGITS[hour]}:${TWO_DIGITS[min]}:${TWO_DIGITS[sec]}.${THREE_DIGITS[milli]}Z`;
}
