// Transport-level protection that runs before Fastify has a request: how long a request may take to
// arrive, what a client that breaks HTTP itself is answered, and how deeply a JSON body may nest.
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from "fastify";
import { newRequestId } from "../ids.js";
import type { Services } from "../services.js";
import { errorEnvelopeBody, JSON_TYPE } from "./envelope.js";
import { ApiError } from "./errors.js";

/** Deepest nesting of arrays and objects a JSON body may have; deeper is 400 INVALID_JSON. */
export const MAX_JSON_DEPTH = 64;

/**
 * True when the JSON text nests arrays/objects deeper than `max`. A linear scan that never recurses,
 * run before JSON.parse, so a body of 100,000 `[` cannot overflow a stack anywhere later (schema
 * checks, JSON.stringify of metadata, canonical request hashes).
 */
export function exceedsJsonDepth(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Node's HTTP server options for LICENSEKIT_REQUEST_TIMEOUT_MS: headers and body must both arrive
 * within it. Node checks for expired requests every `connectionsCheckingInterval` (30 s by default),
 * so the interval is shortened to a quarter of the timeout to make the limit hold within ~25%.
 */
export function timeoutOptions(requestTimeoutMs: number): Pick<FastifyServerOptions, "requestTimeout"> & { http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: requestTimeoutMs,
    http: {
      requestTimeout: requestTimeoutMs,
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      connectionsCheckingInterval: Math.max(25, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
    },
  };
}

/**
 * Fastify's `clientErrorHandler`: a request that never became one (timed out, headers over Node's
 * limit, not HTTP at all) still gets the D1 envelope with its own request id, then the connection
 * is closed. Replaces Fastify's default, which answers in its own body shape.
 */
export function clientErrorHandler(services: Services) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const error =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new ApiError("BAD_REQUEST", `the request was not received within ${services.config.requestTimeoutMs} ms`)
        : err.code === "HPE_HEADER_OVERFLOW"
          ? new ApiError("BAD_REQUEST", "the request headers are larger than the server accepts")
          : new ApiError("BAD_REQUEST", "the request is not valid HTTP");
    const bytesWritten = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
    // Only when nothing of an answer has gone out yet (a timeout may hit a request being answered).
    if (socket.writable && bytesWritten === 0) {
      const id = newRequestId();
      const body = errorEnvelopeBody(error, { request_id: id, timestamp: new Date(services.clock.now()).toISOString() }, null);
      socket.write(
        `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `x-request-id: ${id}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/** A client's name with NUL written as the escape, for a detail. */
function showNul(s: string): string {
  return s.split("\u0000").join("\\u0000");
}

/** The JSON path of the first string (value or key) holding U+0000, or null. Bodies nest ≤ MAX_JSON_DEPTH. */
function nulPath(value: unknown, path: string): string | null {
  if (typeof value === "string") return value.includes("\u0000") ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulPath(value[i], `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${showNul(k)}` : showNul(k);
      if (k.includes("\u0000")) return at;
      const found = nulPath(v, at);
      if (found !== null) return found;
    }
  }
  return null;
}

/**
 * preHandler: PostgreSQL text cannot hold U+0000 (SQLite can), so a NUL character anywhere in the
 * input would end in a database error on one engine and be stored on the other. Refused on both:
 * in a path id → 404 (no resource has such an id), in a query → 400 INVALID_QUERY, in the body →
 * 422 VALIDATION_ERROR naming the field. Runs after schema validation, so decode errors still win.
 * A callback hook, not an async one: it never waits, and runs on every request.
 */
export function refuseNulCharacters(req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  try {
    refuseNul(req);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

function refuseNul(req: FastifyRequest): void {
  // Path and query reach the server percent-encoded (the HTTP parser refuses a raw NUL byte in the
  // request line), so they can decode to NUL only from %00; the body is walked unless its JSON text
  // had no \u0000 escape (bodyNulFree, set by the JSON parser).
  if (req.raw.url?.includes("%00")) refuseNulInUrl(req);
  if (req.bodyNulFree) return;
  const field = nulPath(req.body, "");
  if (field !== null) throw new ApiError("VALIDATION_ERROR", `field ${field || "(body)"}: must not contain NUL characters`);
}

function refuseNulInUrl(req: FastifyRequest): void {
  for (const [name, v] of Object.entries((req.params ?? {}) as Record<string, unknown>)) {
    if (typeof v === "string" && v.includes("\u0000")) throw new ApiError("NOT_FOUND", `no resource has this ${name}`);
  }
  for (const [name, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    if (name.includes("\u0000") || nulPath(v, name) !== null) throw new ApiError("INVALID_QUERY", `query parameter ${showNul(name)}: must not contain NUL characters`);
  }
}
