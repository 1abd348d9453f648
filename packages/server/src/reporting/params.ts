// Query parameters of the reporting reads (NOTES §19): one table per read says which parameters it
// takes and how each is checked. parseParams() refuses unknown and repeated parameters and every bad
// value with 400 INVALID_QUERY naming the parameter; values are kept as given (times as the RFC 3339
// text, ids as strings), except `limit` and integers, which become numbers.
import { ApiError } from "../http/errors.js";

export type ParamRule =
  | { type: "time" }
  | { type: "id" }
  | { type: "text" }
  | { type: "limit" }
  | { type: "int"; min: number; max: number }
  | { type: "enum"; values: readonly string[] }
  | { type: "cursor"; check: (cursor: string) => void };

export type ParamSpec = Record<string, ParamRule & { required?: boolean }>;

export type ParsedParams = Record<string, string | number>;

/** The usage dimensions every usage read and the activity feed filter on. */
export const USAGE_FILTERS = {
  product_id: { type: "id" },
  customer_id: { type: "id" },
  license_id: { type: "id" },
  order_id: { type: "id" },
  subscription_id: { type: "id" },
  feature_code: { type: "text" },
} as const satisfies ParamSpec;

/** Longest id, code or free-text filter accepted. */
export const MAX_FILTER_LENGTH = 200;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** Epoch ms of an RFC 3339 date-time, or undefined when the text is not one (incl. 2026-02-30). */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  const ms = Date.parse(text.toUpperCase());
  return Number.isFinite(ms) ? ms : undefined;
}

export function invalidParam(name: string, problem: string): ApiError {
  return new ApiError("INVALID_QUERY", `query parameter ${name}: ${problem}`);
}

/** NUL and other control characters are refused (PostgreSQL cannot even compare text holding NUL). */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function asText(name: string, v: unknown): string {
  if (Array.isArray(v)) throw invalidParam(name, "must be given once");
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  if (typeof v !== "string") throw invalidParam(name, "must be a string");
  return v;
}

function parseInteger(name: string, v: unknown, min: number, max: number): number {
  if (Array.isArray(v)) throw invalidParam(name, "must be given once");
  const n = typeof v === "number" ? v : /^-?\d{1,16}$/.test(asText(name, v)) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw invalidParam(name, "must be an integer");
  if (n < min) throw invalidParam(name, `must be >= ${min}`);
  if (n > max) throw invalidParam(name, `must be <= ${max}`);
  return n;
}

/**
 * Checks `raw` (a query string object, or an export's `filters`) against `spec`. `undefined` values
 * count as absent. Throws 400 INVALID_QUERY naming the first bad parameter.
 */
export function parseParams(spec: ParamSpec, raw: Record<string, unknown>): ParsedParams {
  for (const name of Object.keys(raw)) {
    if (raw[name] !== undefined && !Object.hasOwn(spec, name)) {
      throw invalidParam(name.slice(0, 100), `unknown parameter (accepted: ${Object.keys(spec).join(", ")})`);
    }
  }
  const out: ParsedParams = {};
  for (const [name, rule] of Object.entries(spec)) {
    const v = raw[name];
    if (v === undefined) {
      if (rule.required) throw invalidParam(name, "is required");
      continue;
    }
    switch (rule.type) {
      case "limit":
        out[name] = parseInteger(name, v, 1, Number.MAX_SAFE_INTEGER);
        break;
      case "int":
        out[name] = parseInteger(name, v, rule.min, rule.max);
        break;
      case "time": {
        const s = asText(name, v);
        if (parseRfc3339(s) === undefined) throw invalidParam(name, "must be an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)");
        out[name] = s;
        break;
      }
      case "enum": {
        const s = asText(name, v);
        if (!rule.values.includes(s)) throw invalidParam(name, `must be one of ${rule.values.join(", ")}`);
        out[name] = s;
        break;
      }
      case "cursor": {
        const s = asText(name, v);
        rule.check(s);
        out[name] = s;
        break;
      }
      case "id":
      case "text": {
        const s = asText(name, v);
        if (s.length === 0) throw invalidParam(name, "must not be empty");
        if (s.length > MAX_FILTER_LENGTH) throw invalidParam(name, `must be at most ${MAX_FILTER_LENGTH} characters`);
        if (hasControlCharacter(s)) throw invalidParam(name, "must not contain control characters");
        out[name] = s;
        break;
      }
    }
  }
  const from = out.from === undefined ? undefined : parseRfc3339(String(out.from));
  const to = out.to === undefined ? undefined : parseRfc3339(String(out.to));
  if (from !== undefined && to !== undefined && from > to) throw invalidParam("from", "must not be after to");
  return out;
}

/** The [from, to) window of parsed params in epoch ms; either end may be open. */
export interface Window {
  from: number | null;
  to: number | null;
}

export function windowOf(p: ParsedParams): Window {
  return {
    from: p.from === undefined ? null : (parseRfc3339(String(p.from)) ?? null),
    to: p.to === undefined ? null : (parseRfc3339(String(p.to)) ?? null),
  };
}
