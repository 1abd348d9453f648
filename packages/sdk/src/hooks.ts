// Logging hooks: what LicenseKit's guidance says to log — the operation, status, error code, request id
// and the resource ids — and never a credential (no headers are passed, so no token or license key).

/** Before every attempt (the first and each retry). `url` is the full request URL (it never holds a credential). */
export interface RequestHookEvent {
  operation: string;
  method: string;
  url: string;
  /** 1 for the first attempt. */
  attempt: number;
}

/** After every failed attempt. */
export interface ErrorHookEvent {
  operation: string;
  method: string;
  /** HTTP status, or undefined for a transport failure. */
  status: number | undefined;
  /** `error.code`; `TRANSPORT_ERROR`, `TIMEOUT` or `ABORTED` when there was no answer. */
  code: string;
  /** `meta.request_id` of the answer, when there was one. */
  requestId: string | undefined;
  /** Path parameters (`license_id` for `/licenses/{id}`, `field_id`, …) and ids named in the body (`product_id`, …). */
  resourceIds: Record<string, string>;
  /** 1 for the first attempt. */
  attempt: number;
  /** Whether the SDK will try again. */
  willRetry: boolean;
  /** The wait before the next attempt, when willRetry. */
  delayMs?: number;
  /** The ApiError or TransportError. */
  error: Error;
}

export interface Hooks {
  onRequest?: (event: RequestHookEvent) => void;
  onError?: (event: ErrorHookEvent) => void;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `licenses` → `license`, `policies` → `policy`, `api-keys` → `api_key`. */
function singular(segment: string): string {
  const s = segment.replace(/-/g, "_");
  if (s.endsWith("ies")) return `${s.slice(0, -3)}y`;
  if (s.endsWith("s")) return s.slice(0, -1);
  return s;
}

/**
 * Resource ids of a call: every path parameter (a bare `{id}` is named after the collection before it:
 * `/licenses/{id}` → `license_id`), and top-level body fields named `*_id` (or `*_ids`, joined by commas)
 * with string values. Never a credential: tokens, license keys and lease tokens are not ids.
 */
export function resourceIdsOf(pathTemplate: string, pathParams: Record<string, unknown> | undefined, body: unknown): Record<string, string> {
  const ids: Record<string, string> = {};
  if (isRecord(body)) {
    for (const [k, v] of Object.entries(body)) {
      if (k.endsWith("_id") && typeof v === "string") ids[k] = v;
      else if (k.endsWith("_ids") && Array.isArray(v) && v.every((x) => typeof x === "string")) ids[k] = v.join(",");
    }
  }
  if (pathParams) {
    const segments = pathTemplate.split("/");
    for (const [k, v] of Object.entries(pathParams)) {
      if (typeof v !== "string" && typeof v !== "number") continue;
      let name = k;
      if (k === "id") {
        const at = segments.indexOf("{id}");
        const before = at > 0 ? segments[at - 1] : undefined;
        if (before) name = `${singular(before)}_id`;
      }
      ids[name] = String(v);
    }
  }
  return ids;
}

/** Calls a hook; a hook that throws (or rejects) never breaks the call. */
export function safeCall<E>(hook: ((event: E) => void) | undefined, event: E): void {
  if (!hook) return;
  try {
    const r: unknown = hook(event);
    if (r && typeof (r as Promise<unknown>).catch === "function") (r as Promise<unknown>).catch(() => {});
  } catch {
    // a logging hook must not change the outcome of the call
  }
}
