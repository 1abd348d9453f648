// Signed runtime answers: success `{data, signature, meta}` and denials `{error, signature, meta}`.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Decision } from "../../domain/runtime-engine.js";
import { errorEnvelopeBody, responseMeta, sendJsonText, signedDataBody } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import type { Outcome } from "../../http/respond.js";

export function signedOutcome(req: FastifyRequest, status: number, data: unknown): Outcome {
  const { keyring, metrics } = req.server.lk;
  metrics.signatures.data.n += 1;
  return { status, body: signedDataBody(data, responseMeta(req), (b) => keyring.sign(b)) };
}

/** A denial that is part of a committed transaction (its audit event and idempotent answer persist). */
export function deniedOutcome(req: FastifyRequest, d: Extract<Decision, { allow: false }>): Outcome {
  const { keyring, metrics } = req.server.lk;
  const err = new ApiError(d.code, d.detail);
  metrics.signatures.error.n += 1;
  return { status: err.status, body: errorEnvelopeBody(err, responseMeta(req), (b) => keyring.sign(b)), errorCode: d.code };
}

export function sendSigned(req: FastifyRequest, reply: FastifyReply, data: unknown): FastifyReply | undefined {
  const o = signedOutcome(req, 200, data);
  return sendJsonText(reply, o.status, o.body);
}

/** Records a denial decided outside a transaction (batched, D7) and refuses the request. */
export function refuse(req: FastifyRequest, op: "validate" | "check", d: Extract<Decision, { allow: false }>): never {
  const license = req.runtime!.license;
  req.server.lk.sideEffects.event({
    event_type: "license.validation_denied",
    actor_type: "license",
    actor_id: license.id,
    resource_type: "license",
    resource_id: license.id,
    metadata: { operation: op, code: d.code },
    ip_address: req.ip,
    request_id: req.id,
    created_at: req.server.lk.clock.now(),
  });
  throw new ApiError(d.code, d.detail);
}
