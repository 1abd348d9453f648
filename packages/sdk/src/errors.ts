// The SDK's error classes. Three kinds, never confused with each other:
//   ApiError                    the server answered with a non-2xx status (its error envelope, parsed)
//   TransportError              no answer: network failure, dropped connection, timeout, or the caller aborted
//   SignatureVerificationError  an answer whose signature does not verify — never a denial, never an ApiError

/** `meta` of every LicenseKit answer. */
export interface ResponseMeta {
  request_id?: string;
  timestamp?: string;
  [key: string]: unknown;
}

/** The `signature` object of runtime answers (success and error). */
export interface ResponseSignature {
  alg: string;
  kid: string;
  value: string;
}

/** `{error:{code,message,detail?}, meta, signature?}` — every non-2xx answer of the server. */
export interface ErrorEnvelope {
  error: { code: string; message: string; detail?: string; [key: string]: unknown };
  meta?: ResponseMeta;
  signature?: ResponseSignature;
}

/** The code given to a non-2xx answer whose body is not an error envelope (a proxy's HTML page, an empty body). */
export const UNKNOWN_ERROR = "UNKNOWN_ERROR";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** True when `body` has the shape of the server's error envelope. */
export function isErrorEnvelope(body: unknown): body is ErrorEnvelope {
  return isRecord(body) && isRecord(body.error) && typeof body.error.code === "string" && typeof body.error.message === "string";
}

export interface ApiErrorInit {
  status: number;
  body: unknown;
  operation?: string;
  headers?: Headers;
  /** Used when the body is not an error envelope. */
  fallbackMessage?: string;
}

/** The server answered with an error status. `code`, `detail` and `requestId` are what to act on and log. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  /** HTTP status. */
  readonly status: number;
  /** The stable error code (`error.code`), or `UNKNOWN_ERROR` when the body is not an error envelope. */
  readonly code: string;
  /** The specific, actionable part (`error.detail`), when the server gave one. */
  readonly detail: string | undefined;
  /** `meta.request_id` (or the `x-request-id` header): quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** `meta.timestamp`. */
  readonly timestamp: string | undefined;
  /** The answer's `meta`, so `error.meta?.request_id` works too. */
  readonly meta: ResponseMeta | undefined;
  /** Runtime error envelopes are signed (over `JSON.stringify(error)`); verify before trusting a denial. */
  readonly signature: ResponseSignature | undefined;
  /** The parsed body (the whole envelope), or the raw text when it was not JSON. */
  readonly body: unknown;
  /** The operationId of the call that failed. */
  readonly operation: string | undefined;
  /** The answer's headers (e.g. `retry-after`). */
  readonly headers: Headers | undefined;

  constructor(init: ApiErrorInit) {
    const envelope = isErrorEnvelope(init.body) ? init.body : undefined;
    super(envelope ? envelope.error.message : (init.fallbackMessage ?? `HTTP ${init.status}`));
    this.status = init.status;
    this.body = init.body;
    this.operation = init.operation;
    this.headers = init.headers;
    this.code = envelope ? envelope.error.code : UNKNOWN_ERROR;
    this.detail = envelope && typeof envelope.error.detail === "string" ? envelope.error.detail : undefined;
    const rawMeta = isRecord(init.body) && isRecord(init.body.meta) ? (init.body.meta as ResponseMeta) : undefined;
    const headerRequestId = init.headers?.get("x-request-id") ?? undefined;
    const requestId = typeof rawMeta?.request_id === "string" ? rawMeta.request_id : headerRequestId;
    this.meta = rawMeta ?? (requestId ? { request_id: requestId } : undefined);
    this.requestId = requestId;
    this.timestamp = typeof rawMeta?.timestamp === "string" ? rawMeta.timestamp : undefined;
    const sig = isRecord(init.body) && isRecord(init.body.signature) ? init.body.signature : undefined;
    this.signature =
      sig && typeof sig.alg === "string" && typeof sig.kid === "string" && typeof sig.value === "string"
        ? { alg: sig.alg, kid: sig.kid, value: sig.value }
        : undefined;
  }

  /** The error envelope, when the body was one (for `verifyRuntimeError`). */
  get envelope(): ErrorEnvelope | undefined {
    return isErrorEnvelope(this.body) ? this.body : undefined;
  }
}

export interface TransportErrorInit {
  message: string;
  cause?: unknown;
  operation?: string;
  timedOut?: boolean;
  aborted?: boolean;
}

/** No answer was received: a network failure, a dropped connection, a timeout, or an abort by the caller. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  /** The operationId of the call that failed. */
  readonly operation: string | undefined;
  /** The attempt (or the call's overall deadline) ran out of time. */
  readonly timedOut: boolean;
  /** The caller's AbortSignal fired; never retried. */
  readonly aborted: boolean;
  /** `ABORTED`, `TIMEOUT` or `TRANSPORT_ERROR`, so `error.code` can be logged for every SDK error alike. */
  readonly code: "ABORTED" | "TIMEOUT" | "TRANSPORT_ERROR";

  constructor(init: TransportErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.operation = init.operation;
    this.timedOut = init.timedOut ?? false;
    this.aborted = init.aborted ?? false;
    this.code = this.aborted ? "ABORTED" : this.timedOut ? "TIMEOUT" : "TRANSPORT_ERROR";
  }
}

/**
 * An answer's signature did not verify (tampered data, signature or kid; unknown key; wrong algorithm).
 * Deliberately not an ApiError: no code path may treat it as an ordinary denial (or as a success).
 */
export class SignatureVerificationError extends Error {
  override readonly name = "SignatureVerificationError";
  /** Why verification failed, e.g. `bad_signature`, `unknown_kid`, `unsupported_alg`, `missing_signature`. */
  readonly reason: string;
  /** The operationId whose answer failed verification, when known. */
  readonly operation?: string;

  constructor(reason: string, message?: string, options?: { operation?: string; cause?: unknown }) {
    super(message ?? `signature verification failed: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    if (options?.operation !== undefined) this.operation = options.operation;
  }
}
