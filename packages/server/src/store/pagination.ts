// Lists (D8): `limit` defaults to 50 and is clamped to 200; `cursor` is opaque; newest first.
import { ApiError } from "../http/errors.js";

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

export function clampLimit(limit: number | undefined): number {
  return Math.min(limit ?? DEFAULT_LIMIT, MAX_LIMIT);
}

export function encodeCursor(id: string): string {
  return Buffer.from(JSON.stringify({ id }), "utf8").toString("base64url");
}

/** The id the next page starts below; 400 INVALID_QUERY for anything this server did not issue. */
export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === "") return null;
  try {
    if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) throw new Error("charset");
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { id?: unknown };
    if (typeof parsed.id !== "string" || !/^[a-z]+_[0-9A-Z]{26}$/.test(parsed.id)) throw new Error("shape");
    return parsed.id;
  } catch {
    throw new ApiError("INVALID_QUERY", "query parameter cursor: is not a cursor returned by this server");
  }
}

export interface Page<T> {
  rows: T[];
  nextCursor: string | null;
}

/** Given limit+1 rows ordered by id desc, returns the page and the cursor of the next one. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  if (rows.length <= limit) return { rows, nextCursor: null };
  const page = rows.slice(0, limit);
  return { rows: page, nextCursor: encodeCursor(page[page.length - 1]!.id) };
}
