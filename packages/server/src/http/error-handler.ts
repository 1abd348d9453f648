// One handler turns every failure — ours, Fastify's, validation, database, crash — into the D1
// envelope. Nothing internal (stack, SQL, secrets) reaches the client; crashes are logged with the
// request id.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { isDatabaseUnavailable, isForeignKeyViolation, isUniqueViolation } from "../store/db.js";
import { sendJsonText, signedErrorBody } from "./envelope.js";
import { ApiError } from "./errors.js";
import { markReplay, settleOutside } from "./idempotency.js";
import { classifyValidation } from "./validation.js";

const FRAMEWORK_CODES: Record<string, () => ApiError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => new ApiError("PAYLOAD_TOO_LARGE", "request body is larger than the server accepts"),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new ApiError("UNSUPPORTED_MEDIA_TYPE", "send the body as application/json"),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new ApiError("BAD_REQUEST", "Content-Length does not match the body"),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new ApiError("INVALID_JSON", "body is empty; send a JSON object"),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new ApiError("INVALID_JSON", "body is not valid JSON"),
  FST_ERR_BAD_URL: () => new ApiError("BAD_REQUEST", "the URL is malformed"),
  FST_ERR_ASYNC_CONSTRAINT: () => new ApiError("BAD_REQUEST", "the request could not be routed"),
};

export function toApiError(err: unknown): { error: ApiError; unexpected: boolean } {
  if (err instanceof ApiError) return { error: err, unexpected: false };
  const fe = err as FastifyError & { validationContext?: string };
  if (fe?.validation) {
    const { code, detail } = classifyValidation(fe.validationContext, fe.validation as never);
    return { error: new ApiError(code, detail), unexpected: false };
  }
  const mapped = fe?.code ? FRAMEWORK_CODES[fe.code] : undefined;
  if (mapped) return { error: mapped(), unexpected: false };
  // Races that slipped past a handler's own checks (two creates with one code at the same instant).
  if (isUniqueViolation(err)) return { error: new ApiError("CONFLICT", "a record with the same unique value already exists"), unexpected: false };
  if (isForeignKeyViolation(err)) return { error: new ApiError("CONFLICT", "a referenced record is missing or still in use"), unexpected: false };
  if (isDatabaseUnavailable(err)) {
    return { error: new ApiError("SERVICE_UNAVAILABLE", "the database is unavailable; retry later", { "retry-after": "1" }), unexpected: true };
  }
  // JSON syntax errors from the body parser, prototype-poisoning refusals.
  if (fe?.statusCode === 400 && (err instanceof SyntaxError || /JSON|__proto__|constructor/i.test(fe.message ?? ""))) {
    return { error: new ApiError("INVALID_JSON", "body is not valid JSON"), unexpected: false };
  }
  if (typeof fe?.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    if (fe.statusCode === 413) return { error: FRAMEWORK_CODES.FST_ERR_CTP_BODY_TOO_LARGE!(), unexpected: false };
    if (fe.statusCode === 415) return { error: FRAMEWORK_CODES.FST_ERR_CTP_INVALID_MEDIA_TYPE!(), unexpected: false };
    return { error: new ApiError("BAD_REQUEST", "the request is malformed"), unexpected: false };
  }
  return { error: new ApiError("INTERNAL_ERROR", `quote this request id when reporting the problem`), unexpected: true };
}

export async function sendError(req: FastifyRequest, reply: FastifyReply, error: ApiError): Promise<FastifyReply | undefined> {
  let body = signedErrorBody(req, error);
  const claim = req.idem;
  if (claim && !claim.settled) {
    try {
      // Stored under the key for replay; a key that meanwhile holds an answer sends that instead.
      const stored = await settleOutside(req.server.lk, claim, error.status, body);
      if (stored) {
        markReplay(req, reply);
        return sendJsonText(reply, stored.status, stored.body);
      }
    } catch (err) {
      if (err instanceof ApiError) {
        error = err;
        body = signedErrorBody(req, err);
      } else req.log.error({ err }, "could not settle idempotency record");
    }
  }
  req.errorCode = error.code;
  reply.header("x-request-id", req.id);
  for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
  return sendJsonText(reply, error.status, body);
}

export async function errorHandler(this: unknown, err: FastifyError, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const { error, unexpected } = toApiError(err);
  if (unexpected) req.log.error({ err, request_id: req.id }, "request failed");
  else req.log.debug({ code: error.code, detail: error.detail }, "request refused");
  return sendError(req, reply, error);
}
