// Response envelopes. Runtime bodies are assembled as text around the exact bytes that were signed,
// so `JSON.stringify(JSON.parse(body).data)` reproduces the signed bytes (what the official SDK verifies).
import type { FastifyReply, FastifyRequest } from "fastify";
import { isoTime } from "../clock.js";
import type { Signature } from "../crypto/signing-keys.js";
import { type ApiError, errorBody } from "./errors.js";

export const JSON_TYPE = "application/json; charset=utf-8";
export const RUNTIME_PREFIX = "/api/v1/license/";

export interface ResponseMeta {
  request_id: string;
  timestamp: string;
}

export function responseMeta(req: FastifyRequest): ResponseMeta {
  return { request_id: req.id, timestamp: isoTime(req.server.lk.clock.now()) };
}

export function isRuntimePath(url: string): boolean {
  return url.startsWith(RUNTIME_PREFIX);
}

export type Signer = (bytes: string) => Signature;

/** `{data, signature, meta}` with the signature over JSON.stringify(data). */
export function signedDataBody(data: unknown, meta: ResponseMeta, sign: Signer): string {
  const dataJson = JSON.stringify(data);
  return `{"data":${dataJson},"signature":${JSON.stringify(sign(dataJson))},"meta":${JSON.stringify(meta)}}`;
}

/** `{error, meta}`; on runtime routes also `signature` over JSON.stringify(error) (D4). */
export function errorEnvelopeBody(err: ApiError, meta: ResponseMeta, sign: Signer | null): string {
  const errJson = JSON.stringify(errorBody(err));
  if (!sign) return `{"error":${errJson},"meta":${JSON.stringify(meta)}}`;
  return `{"error":${errJson},"signature":${JSON.stringify(sign(errJson))},"meta":${JSON.stringify(meta)}}`;
}

/** The signer for this request's errors: the keyring on runtime paths, none elsewhere. */
export function errorSigner(req: FastifyRequest): Signer | null {
  if (!isRuntimePath(req.url)) return null;
  const keyring = req.server.lk.keyring;
  return (bytes) => keyring.sign(bytes);
}

/** This request's error envelope, signed on runtime paths (unsigned when signing fails, logged). */
export function signedErrorBody(req: FastifyRequest, error: ApiError): string {
  const signer = errorSigner(req);
  if (signer) {
    try {
      const body = errorEnvelopeBody(error, responseMeta(req), signer);
      req.server.lk.metrics.signatures.error.n += 1;
      return body;
    } catch (err) {
      req.log.error({ err }, "could not sign error envelope");
    }
  }
  return errorEnvelopeBody(error, responseMeta(req), null);
}

/**
 * What a handler (or error handler) returns once it has called `send`: nothing when the answer has
 * already left, which is the usual case (every onSend hook finished synchronously), else the reply,
 * for Fastify to wait on. Returning a reply that has been sent is not free: the reply is a thenable,
 * so the handler's promise calls its `then`, which hooks end-of-stream listeners onto the response
 * and waits for them, for every request.
 */
export function handedOver(reply: FastifyReply): FastifyReply | undefined {
  return reply.sent ? undefined : reply;
}

export function sendJsonText(reply: FastifyReply, status: number, body: string): FastifyReply | undefined {
  // 204 No Content has no body and no content type (also when an idempotent 204 is replayed).
  if (status === 204) return handedOver(reply.code(204).removeHeader("content-type").send());
  return handedOver(reply.code(status).type(JSON_TYPE).send(body));
}
