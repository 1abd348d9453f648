// Answers for writes. The work runs in one database transaction that also takes the request's
// Idempotency-Key and stores its response, so the state change and its recorded answer commit
// together (and a key that already holds an answer is replayed without running the work).
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Tx } from "../store/db.js";
import { responseMeta, sendJsonText } from "./envelope.js";
import { claimInTransaction, completeClaim, markReplay } from "./idempotency.js";

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
): Promise<FastifyReply | undefined> {
  const lk = req.server.lk;
  const claim = req.idem && !req.idem.settled ? req.idem : null;
  const outcome = await lk.store.db.transaction().execute(async (trx): Promise<Outcome & { replayed?: true }> => {
    // The key first: a request whose key already holds an answer changes nothing and replays it.
    const stored = claim && (await claimInTransaction(trx, lk, claim));
    if (stored) return { ...stored, replayed: true };
    const o = await work(trx);
    if (claim) await completeClaim(trx, lk, claim, o.status, o.body);
    return o;
  });
  if (outcome.replayed) markReplay(req, reply);
  else if (outcome.errorCode) req.errorCode = outcome.errorCode;
  return sendJsonText(reply, outcome.status, outcome.body);
}
