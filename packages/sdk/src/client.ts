// The request engine shared by ManagementClient, RuntimeClient and SystemClient: one generic
// `call(operationId, args)` driven by the generated operations table, typed from the generated
// OpenAPI types. No per-operation code: each client's methods are installed from the table.
import { ApiError, TransportError } from "./errors.js";
import type { operations } from "./generated/openapi.js";
import { OPERATIONS, type OperationId, type Operations, type Surface, type SurfaceOperationId } from "./generated/operations.js";
import { type Hooks, resourceIdsOf, safeCall } from "./hooks.js";
import { isRetryableFailure, isRetryableRequest, newIdempotencyKey, type RetryOptions, resolveRetryOptions, retryDelay, sleep } from "./retry.js";

export const SDK_VERSION = "0.1.0";
export const DEFAULT_USER_AGENT = `licensekit-sdk-typescript/${SDK_VERSION}`;
export const DEFAULT_TIMEOUT_MS = 30_000;

/** The least time a retry leaves for its attempt before the deadline. */
const MIN_ATTEMPT_MS = 100;

/** Options every client takes (the official SDK's `ClientOptions`, plus hooks, a deadline-aware retry and a signal). */
export interface ClientOptions extends Hooks {
  /** The server, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /** Sent with every request (per-call `headers` win). */
  headers?: HeadersInit;
  /** Per-attempt timeout in ms (default 30000); the retry deadline bounds the whole call. */
  timeoutMs?: number;
  /** `User-Agent` header (default `licensekit-sdk-typescript/<version>`). */
  userAgent?: string;
  /** Retry policy; see RetryOptions. Retries follow the guidance rule whatever is configured here. */
  retry?: RetryOptions;
  /** A fetch implementation (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Aborts every call of this client (e.g. at shutdown). */
  signal?: AbortSignal;
}

/** Per-call options, next to `path`, `query` and `body`. */
export interface CallOptions {
  /** `Idempotency-Key`. Generated (UUID v4) for operations that require one; reused on every retry of the call. */
  idempotencyKey?: string;
  signal?: AbortSignal;
  headers?: HeadersInit;
  timeoutMs?: number;
  retry?: RetryOptions;
}

type Op<O extends OperationId> = operations[O];
type Defined<T> = Exclude<T, undefined>;
type JsonContent<T> = [T] extends [never] ? never : T extends { content: { "application/json": infer B } } ? B : never;

type PathParams<O extends OperationId> = Defined<Op<O>["parameters"]["path"]>;
type QueryParams<O extends OperationId> = Defined<Op<O>["parameters"]["query"]>;
type RequestBody<O extends OperationId> = JsonContent<Defined<Op<O>["requestBody"]>>;

type PathArg<O extends OperationId> = [PathParams<O>] extends [never] ? { path?: undefined } : { path: PathParams<O> };
type QueryArg<O extends OperationId> = [QueryParams<O>] extends [never]
  ? { query?: undefined }
  : undefined extends Op<O>["parameters"]["query"]
    ? { query?: QueryParams<O> }
    : { query: QueryParams<O> };
type BodyArg<O extends OperationId> = [RequestBody<O>] extends [never]
  ? { body?: undefined }
  : undefined extends Op<O>["requestBody"]
    ? { body?: RequestBody<O> }
    : { body: RequestBody<O> };

/** The argument of an operation's method: `{ path?, query?, body?, idempotencyKey?, signal?, headers? }`, typed per operation. */
export type OperationArgs<O extends OperationId> = PathArg<O> & QueryArg<O> & BodyArg<O> & CallOptions;

type ResponseBody<R> = R extends { content: infer C } ? (C extends { "application/json": infer B } ? B : C[keyof C]) : undefined;
type SuccessStatus<O extends OperationId> = Operations[O]["success"][number] & keyof Op<O>["responses"];
type JsonResult<O extends OperationId> = { [S in SuccessStatus<O>]: ResponseBody<Op<O>["responses"][S]> }[SuccessStatus<O>];

/**
 * What an operation's method resolves to: the parsed envelope (`data`, `meta`, `signature`, `page_info`);
 * `undefined` for 204. For a download (`response: "bytes"` in the operations table, e.g.
 * `downloadReportExport`) the raw body as a Uint8Array, whatever its content type.
 */
export type OperationResult<O extends OperationId> = Operations[O]["response"] extends "bytes" ? Uint8Array : JsonResult<O>;

type RequiredKeys<T> = { [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? never : K }[keyof T];
/** `[args]` when the operation needs a path or a body, else `[args?]`. */
export type OperationArgsTuple<O extends OperationId> = [RequiredKeys<OperationArgs<O>>] extends [never]
  ? [args?: OperationArgs<O>]
  : [args: OperationArgs<O>];

export type OperationMethod<O extends OperationId> = (...args: OperationArgsTuple<O>) => Promise<OperationResult<O>>;

/** One method per operationId of a surface. */
export type SurfaceMethods<S extends Surface> = { [O in SurfaceOperationId<S>]: OperationMethod<O> };

interface LooseArgs extends CallOptions {
  path?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: unknown;
}

function buildUrl(baseUrl: string, template: string, pathParams: Record<string, unknown> | undefined, query: Record<string, unknown> | undefined, operation: string): string {
  const path = template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = pathParams?.[name];
    if (v === undefined || v === null || v === "") throw new TypeError(`${operation}: missing path parameter "${name}"`);
    return encodeURIComponent(String(v));
  });
  let url = baseUrl + path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null) continue;
      for (const item of Array.isArray(v) ? v : [v]) qs.append(k, item instanceof Date ? item.toISOString() : String(item));
    }
    const s = qs.toString();
    if (s) url += `?${s}`;
  }
  return url;
}

/** One signal that fires when any of the given ones does; `dispose` removes the listeners. */
function linkSignals(signals: (AbortSignal | undefined)[]): { signal: AbortSignal | undefined; dispose: () => void } {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 0) return { signal: undefined, dispose: () => {} };
  if (present.length === 1) return { signal: present[0], dispose: () => {} };
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  for (const s of present) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    const onAbort = () => controller.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    cleanups.push(() => s.removeEventListener("abort", onAbort));
  }
  const dispose = () => {
    for (const c of cleanups) c();
  };
  return { signal: controller.signal, dispose };
}

/** `text/*`, or no content type at all (read as text, as before). */
function isTextual(contentType: string): boolean {
  return contentType === "" || /^\s*text\//i.test(contentType);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.message}${cause}`;
  }
  return String(err);
}

/** The generic client; the three public clients are this with a surface, an Authorization header and installed methods. */
export class BaseClient<S extends Surface> {
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** Which operations this client serves. */
  readonly surface: S;
  readonly #options: ClientOptions;
  // A private field: never enumerable, so logging or serialising the client never shows the credential.
  readonly #authorization: string | undefined;

  constructor(surface: S, options: ClientOptions, authorization?: string) {
    if (!options || typeof options.baseUrl !== "string" || options.baseUrl === "") throw new TypeError("baseUrl is required");
    this.surface = surface;
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#options = { ...options };
    this.#authorization = authorization;
  }

  /** Calls any operation of this client's surface by operationId; every generated method goes through here. */
  call<O extends SurfaceOperationId<S>>(operationId: O, ...args: OperationArgsTuple<O>): Promise<OperationResult<O>> {
    return this.#call(operationId, (args[0] ?? {}) as LooseArgs) as Promise<OperationResult<O>>;
  }

  async #call(operationId: string, args: LooseArgs): Promise<unknown> {
    const spec = (OPERATIONS as Record<string, Operations[OperationId]>)[operationId];
    if (!spec) throw new TypeError(`unknown operation "${operationId}"`);
    if (spec.surface !== this.surface) throw new TypeError(`${operationId} is a ${spec.surface} operation, not one of this ${this.surface} client`);
    const o = this.#options;
    const url = buildUrl(this.baseUrl, spec.path, args.path, args.query, operationId);
    const retry = resolveRetryOptions(o.retry, args.retry);
    const timeoutMs = args.timeoutMs ?? o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const fetchImpl = o.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("no fetch implementation: pass options.fetch");

    // One key for the whole call, reused on every retry.
    const idempotencyKey = args.idempotencyKey ?? (spec.idempotency === "required" ? newIdempotencyKey() : undefined);
    const headers = new Headers(o.headers);
    new Headers(args.headers).forEach((v, k) => {
      headers.set(k, v);
    });
    // A download may answer any of its declared media types; error answers are JSON either way.
    if (!headers.has("accept")) headers.set("accept", spec.response === "bytes" ? "*/*" : "application/json");
    if (!headers.has("user-agent")) headers.set("user-agent", o.userAgent ?? DEFAULT_USER_AGENT);
    if (this.#authorization !== undefined) headers.set("authorization", this.#authorization);
    if (idempotencyKey !== undefined) headers.set("idempotency-key", idempotencyKey);
    let body: string | undefined;
    if (args.body !== undefined) {
      body = JSON.stringify(args.body);
      headers.set("content-type", "application/json");
    }

    const maxAttempts = isRetryableRequest(spec.method, idempotencyKey !== undefined, retry) ? retry.retries + 1 : 1;
    const deadlineAt = Date.now() + retry.deadlineMs;
    const resourceIds = resourceIdsOf(spec.path, args.path, args.body);
    const linked = linkSignals([o.signal, args.signal]);
    const signal = linked.signal;
    try {
      for (let attempt = 1; ; attempt++) {
        if (signal?.aborted) throw this.#aborted(operationId, signal.reason);
        safeCall(o.onRequest, { operation: operationId, method: spec.method, url, attempt });
        let error: ApiError | TransportError;
        try {
          const remaining = Math.max(1, deadlineAt - Date.now());
          return await this.#attempt(operationId, spec, url, headers, body, Math.min(timeoutMs, remaining), fetchImpl, signal);
        } catch (err) {
          if (!(err instanceof ApiError || err instanceof TransportError)) throw err;
          error = err;
        }
        let delay: number | undefined;
        // A retry must leave the next attempt a useful slice of the deadline; otherwise the caller gets
        // the last real answer rather than a timeout manufactured by the deadline itself.
        if (attempt < maxAttempts && isRetryableFailure(error)) delay = retryDelay(error, attempt, retry, deadlineAt - Date.now() - MIN_ATTEMPT_MS);
        safeCall(o.onError, {
          operation: operationId,
          method: spec.method,
          status: error instanceof ApiError ? error.status : undefined,
          code: error.code,
          requestId: error instanceof ApiError ? error.requestId : undefined,
          resourceIds: { ...resourceIds },
          attempt,
          willRetry: delay !== undefined,
          ...(delay !== undefined ? { delayMs: delay } : {}),
          error,
        });
        if (delay === undefined) throw error;
        try {
          await sleep(delay, signal);
        } catch (reason) {
          throw this.#aborted(operationId, reason);
        }
      }
    } finally {
      linked.dispose();
    }
  }

  #aborted(operation: string, reason: unknown): TransportError {
    return new TransportError({ message: `${operation}: request aborted`, cause: reason, operation, aborted: true });
  }

  async #attempt(
    operation: string,
    spec: Operations[OperationId],
    url: string,
    headers: Headers,
    body: string | undefined,
    timeoutMs: number,
    fetchImpl: typeof fetch,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let res: Response;
    let bytes: Uint8Array;
    try {
      res = await fetchImpl(url, { method: spec.method, headers, body, signal: controller.signal });
      // Bytes, not res.text(): decoding a PDF as UTF-8 would corrupt it. Text is decoded below when wanted.
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      if (signal?.aborted) throw this.#aborted(operation, signal.reason);
      if (timedOut) throw new TransportError({ message: `${operation}: timed out after ${timeoutMs} ms`, cause: err, operation, timedOut: true });
      throw new TransportError({ message: `${operation}: ${describe(err)}`, cause: err, operation });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }

    const success: readonly number[] = spec.success;
    const ok = res.ok || success.includes(res.status);
    // A download's answer is its bytes exactly (PDF, CSV or JSON alike); its errors are envelopes as usual.
    if (ok && spec.response === "bytes") return bytes;

    const contentType = res.headers.get("content-type") ?? "";
    const isJson = /\bjson\b/i.test(contentType);
    // Not JSON, not text: a success answer is returned as bytes; an error's body is kept as text for the message.
    if (ok && bytes.length > 0 && !isJson && !isTextual(contentType)) return bytes;
    const text = bytes.length > 0 ? new TextDecoder().decode(bytes) : "";
    let parsed: unknown;
    let parseFailed = false;
    if (text !== "") {
      if (isJson) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
          parseFailed = true;
        }
      } else {
        parsed = text;
      }
    }
    if (ok) {
      if (parseFailed) throw new ApiError({ status: res.status, body: text, operation, headers: res.headers, fallbackMessage: "the answer is not valid JSON" });
      return parsed;
    }
    throw new ApiError({
      status: res.status,
      body: parsed,
      operation,
      headers: res.headers,
      fallbackMessage: `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`,
    });
  }
}

/** Defines one method per operationId of the surface on a client prototype (each is `call(operationId, args)`). */
export function installOperations(prototype: object, surface: Surface): void {
  for (const [operationId, spec] of Object.entries(OPERATIONS)) {
    if (spec.surface !== surface) continue;
    if (operationId in prototype) throw new Error(`operationId ${operationId} collides with a client member`);
    Object.defineProperty(prototype, operationId, {
      value: function (this: BaseClient<Surface>, args?: unknown) {
        return (this.call as (op: string, a?: unknown) => Promise<unknown>)(operationId, args);
      },
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}

/** The operationIds of one surface, from the generated table. */
export function operationsOf(surface: Surface): OperationId[] {
  return (Object.keys(OPERATIONS) as OperationId[]).filter((k) => OPERATIONS[k].surface === surface);
}
