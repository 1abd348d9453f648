// Opaque cursors of the reporting lists: base64url JSON of the last row's sort key. Anything this
// server did not issue is refused with 400 INVALID_QUERY.
import { invalidParam } from "./params.js";

/** Ledger rows are ordered by (created_at, license_id, event_id), all descending. */
export interface LedgerCursor {
  t: number;
  l: string;
  e: string;
}

const CURSOR_CHARS = /^[A-Za-z0-9_-]{1,1200}$/;

function notOurs(): never {
  throw invalidParam("cursor", "is not a cursor returned by this server");
}

function decodeJson(cursor: string): unknown {
  if (!CURSOR_CHARS.test(cursor)) notOurs();
  try {
    return JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
  } catch {
    return notOurs();
  }
}

const encodeJson = (v: unknown): string => Buffer.from(JSON.stringify(v), "utf8").toString("base64url");

export function encodeLedgerCursor(c: LedgerCursor): string {
  return encodeJson({ ledger: [c.t, c.l, c.e] });
}

export function decodeLedgerCursor(cursor: string): LedgerCursor {
  const v = decodeJson(cursor) as { ledger?: unknown };
  const k = v && typeof v === "object" ? v.ledger : undefined;
  if (!Array.isArray(k) || k.length !== 3) return notOurs();
  const [t, l, e] = k as unknown[];
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) return notOurs();
  if (typeof l !== "string" || !/^lic_[0-9A-Z]{26}$/.test(l)) return notOurs();
  if (typeof e !== "string" || e.length < 1 || e.length > 255) return notOurs();
  return { t, l, e };
}

/** Activities are ordered by the audit sequence, descending. */
export function encodeActivityCursor(sequence: number): string {
  return encodeJson({ seq: sequence });
}

export function decodeActivityCursor(cursor: string): number {
  const v = decodeJson(cursor) as { seq?: unknown };
  const s = v && typeof v === "object" ? v.seq : undefined;
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1) return notOurs();
  return s;
}
