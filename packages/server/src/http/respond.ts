// Answers for writes. The work runs in one database transaction that also stores the idempotent
// response, so the state change and its recorded answer commit together.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Tx } from "../store/db.js";
import { responseMeta, sendJsonText } from "./envelope.js";
import { completeClaim } from "./idempotency.js";

export interface Outcome {
  status: number;
  body: string;
  /** Set when the outcome is a recorded denial (an error answer whose side effects must commit). */
  errorCode?: string;
}

/** A management `{data, meta}` body serialized by the route's response schema for `status`. */
export function managementOutcome(req: FastifyRequest, reply: FastifyReply, status: number, data: unknown): Outcome {
  reply.code(status);
  return { status, body: reply.serialize({ data, meta: responseMeta(req) }) as string };
}

/** A 204 No Content answer (deletes, cleared values): an empty body. */
export function noContentOutcome(reply: FastifyReply): Outcome {
  reply.code(204);
  return { status: 204, body: "" };
}

export async function commitAndRespond(
  req: FastifyRequest,
  reply: FastifyReply,
  work: (trx: Tx) => Promise<Outcome>,
): Promise<FastifyReply> {
  const lk = req.server.lk;
  const outcome = await lk.store.db.transaction().execute(async (trx) => {
    const o = await work(trx);
    if (req.idem) await completeClaim(trx, lk, req.idem, o.status, o.body);
    return o;
  });
  if (outcome.errorCode) req.errorCode = outcome.errorCode;
  return sendJsonText(reply, outcome.status, outcome.body);
}
