// Builds the Fastify app from its parts: request ids and logging, validation, the error envelope,
// 404/405, metrics, then the system, runtime and management route groups (each with its own auth).
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController, type RouteOptions } from "fastify";
import { managementAuth, runtimeAuth } from "./http/auth.js";
import { errorHandler, sendError, toApiError } from "./http/error-handler.js";
import { ApiError } from "./http/errors.js";
import "./http/fastify-types.js";
import { idempotencyPreHandler, settleClaimOnSend } from "./http/idempotency.js";
import { installNotFound } from "./http/not-found.js";
import { clientErrorHandler, exceedsJsonDepth, MAX_JSON_DEPTH, refuseNulCharacters, timeoutOptions } from "./http/transport.js";
import { RateLimits } from "./http/rate-limit.js";
import { errorResponses } from "./http/schemas.js";
import { validatorCompiler } from "./http/validation.js";
import { newRequestId } from "./ids.js";
import { purgeExpiredIdempotencyRecords } from "./jobs/idempotency-purge.js";
import { expireFloatingLeases } from "./jobs/lease-expiry.js";
import { deferredChildLogger } from "./observability/request-logger.js";
import { observeRequest } from "./observability/request-observer.js";
import { MANAGEMENT_ROUTES } from "./routes/management/index.js";
import { RUNTIME_ROUTES } from "./routes/runtime/index.js";
import { systemRoutes } from "./routes/system.js";
import type { Services } from "./services.js";

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A client that puts a credential in X-Request-Id must not get it written to the logs. */
const CREDENTIAL_LIKE = /(lsk|lkm|llt|whsec)_/i;
/** Log levels at which the one line per request (written at info) is written. */
const REQUEST_LOG_LEVELS = new Set(["trace", "debug", "info"]);

export interface BuildOptions {
  /** pino options or false; defaults to JSON logs at the configured level. */
  logger?: FastifyServerOptions["logger"];
}

export async function buildApp(services: Services, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const { config } = services;
  const app = Fastify({
    logger: opts.logger ?? {
      level: config.logLevel,
      redact: { paths: ["req.headers.authorization", "req.headers.cookie", "*.license_key", "*.token"], censor: "[redacted]" },
    },
    // req.log's pino child is made only when the request logs something (observability/request-logger.ts).
    ...(opts.logger === false ? {} : { childLoggerFactory: deferredChildLogger }),
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    // One log line per request, written by the onResponse hook below.
    logController: new LogController({ requestIdLogLabel: "request_id", disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // A stalled or trickling request is cut off (LICENSEKIT_REQUEST_TIMEOUT_MS); HTTP-level failures get the envelope.
    ...timeoutOptions(config.requestTimeoutMs),
    clientErrorHandler: clientErrorHandler(services),
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    return503OnClosing: false,
    routerOptions: { maxParamLength: 200 },
    // Errors raised before routing (bad URL, bad content-type parser state) get the envelope too.
    frameworkErrors: (err, req, reply) => {
      reply.header("x-request-id", req.id);
      void sendError(req, reply, toApiError(err).error);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate("lk", services);
  app.decorateRequest("principal", null);
  app.decorateRequest("runtime", null);
  app.decorateRequest("idem", null);
  app.decorateRequest("errorCode", null);
  app.decorateRequest("correlationId", null);
  app.decorateRequest("bodyNulFree", false);
  app.decorateRequest("runtimeReadOnly", false);

  // An empty body sent as application/json means "no body" (clients often set the header on every
  // POST); anything else goes to Fastify's own parser (prototype-poisoning safe).
  // JSON is the only body format: text/plain (parsed by Fastify by default) is 415 like any other.
  app.removeContentTypeParser("text/plain");
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    // Refused before parsing: deep nesting would overflow the stack in later recursive steps.
    if (exceedsJsonDepth(text)) return done(new ApiError("INVALID_JSON", `JSON nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    // JSON cannot hold a raw U+0000 in a string (JSON.parse refuses control characters), only the
    // escape: without one, refuseNulCharacters need not walk the parsed body.
    req.bodyNulFree = !text.includes("\\u0000");
    parseJson(req, text, done);
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(errorHandler);
  installNotFound(app);

  // Hooks that never wait are callback hooks: an async hook costs every request a promise.
  app.addHook("onRequest", (req, reply, done) => {
    reply.header("x-request-id", req.id);
    const incoming = req.headers["x-request-id"];
    if (typeof incoming === "string" && CORRELATION_ID.test(incoming) && !CREDENTIAL_LIKE.test(incoming)) {
      req.correlationId = incoming;
      req.log = req.log.child({ correlation_id: incoming });
    }
    done();
  });

  app.addHook("onSend", settleClaimOnSend);
  // Before any route group's own preHandlers (idempotency claims): U+0000 is refused on both engines.
  app.addHook("preHandler", refuseNulCharacters);
  // A write invalidates the runtime cache of this process before its answer leaves (read-your-writes).
  app.addHook("onSend", services.runtimeInvalidation.afterWrite);

  // The request line is built only when it is written (the level is fixed at start-up).
  const logRequests = REQUEST_LOG_LEVELS.has(app.log.level);
  app.addHook("onResponse", (req, reply, done) => {
    const elapsed = reply.elapsedTime / 1000;
    observeRequest(services, req, reply.statusCode, elapsed);
    if (logRequests) {
      req.log.info(
        { method: req.method, route: req.routeOptions.url ?? "unmatched", status: reply.statusCode, code: req.errorCode ?? undefined, ms: Math.round(elapsed * 100000) / 100 },
        "request",
      );
    }
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "LicenseKit API", version: "1.0.0", description: "Generated from the route schemas of this server." },
      components: {
        securitySchemes: {
          bearerAuth: { type: "http", scheme: "bearer" },
          licenseAuth: { type: "apiKey", in: "header", name: "Authorization" },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const scope = route.config?.scope;
      const out = { ...(schema as Record<string, unknown>) };
      if (scope) {
        out["x-required-scopes"] = [scope];
        out.security = [{ bearerAuth: [] }];
      } else if (url.startsWith("/api/v1/license/")) {
        out.security = [{ licenseAuth: [] }];
      }
      return { schema: out as never, url };
    },
  });
  app.get("/api/v1/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  await app.register(systemRoutes);

  // D10: limits wrap the authentication of both surfaces (failed auths per IP, calls per credential).
  const rateLimits = new RateLimits(config.rateLimits, services.clock, services.store);

  await app.register(
    async (runtime) => {
      runtime.addHook("onRequest", rateLimits.around("runtime", runtimeAuth));
      runtime.addHook("preHandler", idempotencyPreHandler);
      for (const routes of RUNTIME_ROUTES) await runtime.register(routes);
    },
    { prefix: "/api/v1/license" },
  );

  await app.register(
    async (management) => {
      management.addHook("onRoute", declareIdempotencyKeyErrors);
      management.addHook("onRequest", rateLimits.around("management", managementAuth));
      management.addHook("preHandler", idempotencyPreHandler);
      for (const routes of MANAGEMENT_ROUTES) await management.register(routes);
    },
    { prefix: "/api/v1" },
  );

  app.addHook("onClose", async () => {
    services.keyring.stopRefreshing();
    // webhook attempts in flight are aborted and their claims given back before the store closes
    await services.webhookDelivery.stop();
    services.sideEffects.stop();
    await services.runtimeInvalidation.stop();
    await services.sideEffects.flush();
    services.requestStats.stop();
    await services.requestStats.flush().catch((err) => app.log.error({ err }, "request statistics flush failed"));
    await services.store.close();
  });

  return app;
}

const PURGE_INTERVAL_MS = 10 * 60_000;
const LEASE_EXPIRY_INTERVAL_MS = 60_000;

/** Starts the periodic jobs of a serving process; they stop when the app closes. */
export function startBackgroundWork(app: FastifyInstance): void {
  const lk = app.lk;
  lk.keyring.startRefreshing(lk.config.keyRefreshSeconds * 1000, (err) => app.log.error({ err }, "signing key refresh failed"));
  // SQLite file: the batched stamps and counts are written on a thread of their own.
  lk.store.batchWriter?.start((err) => app.log.error({ err }, "SQLite batch thread failed"));
  lk.sideEffects.start(lk.config.sideEffectFlushMs);
  // SQLite file: WAL checkpoints on a thread of their own instead of inside a request's commit.
  if (lk.config.sqliteCheckpointMs > 0) lk.store.checkpointer?.start(lk.config.sqliteCheckpointMs, (err) => app.log.error({ err }, "WAL checkpoint failed"));
  // The runtime cache's change feed (LISTEN on PostgreSQL, polling on both); the cache is served only while it is live.
  void lk.runtimeInvalidation.start((err, what) => app.log.error({ err }, `${what} failed`));
  // The webhook outbox (D6): polled every LICENSEKIT_WEBHOOK_POLL_MS; stopped by the onClose above.
  lk.webhookDelivery.start(app.log);
  // Per-minute request counts for GET /api/v1/ops/summary, on the same cadence; old minutes purged.
  lk.requestStats.start(lk.config.sideEffectFlushMs, (err, what) => app.log.error({ err }, `request statistics ${what} failed`));
  const purge = setInterval(() => {
    purgeExpiredIdempotencyRecords(lk.store, lk.clock).then(
      (n) => n > 0 && app.log.info({ deleted: n }, "purged expired idempotency records"),
      (err) => app.log.error({ err }, "idempotency purge failed"),
    );
  }, PURGE_INTERVAL_MS);
  purge.unref();
  app.addHook("onClose", async () => clearInterval(purge));
  // Floating leases past their timeout: marked expired and audited (seats never wait for this job).
  const leases = setInterval(() => {
    expireFloatingLeases(lk.store, lk.clock).then(
      (n) => n > 0 && app.log.info({ expired: n }, "expired floating leases"),
      (err) => app.log.error({ err }, "floating lease expiry failed"),
    );
  }, LEASE_EXPIRY_INTERVAL_MS);
  leases.unref();
  app.addHook("onClose", async () => clearInterval(leases));
}

/**
 * Every write that takes an Idempotency-Key can answer 400 BAD_REQUEST for a malformed key (D3),
 * including writes without a body; declare it so the generated document lists every status.
 */
function declareIdempotencyKeyErrors(route: RouteOptions): void {
  const response = route.schema?.response as Record<string, unknown> | undefined;
  if (!route.config?.idempotency || !response || response[400]) return;
  route.schema = { ...route.schema, response: { ...response, ...errorResponses("BAD_REQUEST") } };
}
