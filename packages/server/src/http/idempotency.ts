// Idempotency (D3). A keyed request first claims its record (credential + method + path + key); the
// handler's transaction stores the response in that record together with the state change, so a
// replay returns the identical bytes and a crash can never leave "changed but not recorded".
// Answers >= 500, 401 and 429 are not stored: the claim is released and a retry runs again.
import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { open, seal } from "../crypto/aead.js";
import type { Services } from "../services.js";
import type { Q, Store } from "../store/db.js";
import { prepare } from "../store/prepared.js";
import { sendJsonText } from "./envelope.js";
import { ApiError, isReplayableStatus } from "./errors.js";

/** How long an unfinished claim blocks retries before it is presumed abandoned (crashed holder). */
export const IN_PROGRESS_TTL_MS = 60_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface IdempotencyClaim {
  id: string;
  requestHash: string;
  completed: boolean;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) out[k] = canonical((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** SHA-256 of the canonical request: method, path, sorted query, body with sorted keys. */
export function requestHash(req: FastifyRequest): string {
  const [path, query = ""] = req.url.split("?", 2);
  const sortedQuery = query.split("&").filter(Boolean).sort().join("&");
  return createHash("sha256")
    .update(JSON.stringify([req.method, path, sortedQuery, canonical(req.body ?? null)]))
    .digest("hex");
}

function recordId(credentialId: string, method: string, path: string, key: string): string {
  return createHash("sha256").update(`${credentialId}\n${method}\n${path}\n${key}`).digest("hex");
}

type ClaimResult = { kind: "claimed"; claim: IdempotencyClaim } | { kind: "replay"; status: number; body: string };

const recordById = prepare(1, (q, id: string) => q.selectFrom("idempotency_records").selectAll().where("id", "=", id));
const insertClaim = prepare(5, (q, id: string, credentialId: string, hash: string, now: number, expiresAt: number) =>
  q.insertInto("idempotency_records").values({
    id,
    credential_id: credentialId,
    request_hash: hash,
    state: "in_progress",
    response_status: null,
    response_body: null,
    created_at: now,
    expires_at: expiresAt,
  })
    // A key already held leaves no row (and no error): the caller then reads what holds it.
    .onConflict((oc) => oc.column("id").doNothing())
    .returning("id"),
);
const completeRecord = prepare(4, (q, id: string, status: number, body: string, expiresAt: number) =>
  q
    .updateTable("idempotency_records")
    .set({ state: "completed", response_status: status, response_body: body, expires_at: expiresAt })
    .where("id", "=", id)
    .where("state", "=", "in_progress"),
);

async function claim(lk: Services, now: number, id: string, credentialId: string, hash: string): Promise<ClaimResult> {
  const db = lk.store.db;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Most keys are new: one statement claims them.
    if (await insertClaim.first(db, id, credentialId, hash, now, now + IN_PROGRESS_TTL_MS)) {
      return { kind: "claimed", claim: { id, requestHash: hash, completed: false } };
    }
    const existing = await recordById.first(db, id);
    if (!existing) continue; // released or purged since the insert found it

    if (existing.state === "completed" && existing.expires_at <= now) {
      // Past retention but not purged yet: the key is free again.
      await db.deleteFrom("idempotency_records").where("id", "=", id).where("expires_at", "=", existing.expires_at).execute();
      continue;
    }
    if (existing.request_hash !== hash) {
      throw new ApiError("IDEMPOTENCY_CONFLICT", "this Idempotency-Key was used with a different request; resend the original request or use a new key");
    }
    if (existing.state === "completed") {
      // Stored bodies are sealed: a create answer may carry a secret shown once (a license key).
      const body = open(lk.idempotencySealKey, existing.response_body ?? "", id).toString("utf8");
      return { kind: "replay", status: existing.response_status ?? 200, body };
    }
    if (existing.expires_at > now) {
      throw new ApiError("IDEMPOTENCY_IN_PROGRESS", "a request with this Idempotency-Key is still being processed; retry shortly");
    }
    // The previous holder never finished (crashed): take the claim over.
    const res = await db
      .updateTable("idempotency_records")
      .set({ created_at: now, expires_at: now + IN_PROGRESS_TTL_MS })
      .where("id", "=", id)
      .where("state", "=", "in_progress")
      .where("expires_at", "=", existing.expires_at)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1) return { kind: "claimed", claim: { id, requestHash: hash, completed: false } };
  }
  throw new ApiError("IDEMPOTENCY_IN_PROGRESS", "a request with this Idempotency-Key is contended; retry shortly");
}

/**
 * preHandler: applies the route's idempotency rule. Runs after authentication (the credential is the
 * scope) and after body validation. Sends the stored answer itself on a replay.
 */
export function idempotencyPreHandler(req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
  // Most calls carry no key (validate, check, reads): answered without a promise.
  const mode = req.routeOptions.config.idempotency;
  if (!mode) {
    done();
    return;
  }
  if (req.headers["idempotency-key"] === undefined) {
    done(mode === "required" ? new ApiError("IDEMPOTENCY_KEY_REQUIRED", "this operation requires an Idempotency-Key header") : undefined);
    return;
  }
  // A replay has been sent by then: the request goes no further (done is not called).
  claimForRequest(req, reply).then((replayed) => {
    if (!replayed) done();
  }, done);
}

/** Claims the key, or sends the stored answer and says so (true). */
async function claimForRequest(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  const header = req.headers["idempotency-key"]!;
  const key = Array.isArray(header) ? header[0] : header;
  if (Array.isArray(header) && header.length > 1) throw new ApiError("BAD_REQUEST", "send one Idempotency-Key header");
  if (key === undefined || !KEY_PATTERN.test(key)) {
    throw new ApiError("BAD_REQUEST", "Idempotency-Key must be 1 to 255 visible ASCII characters");
  }
  const credentialId = req.principal?.id ?? req.runtime?.license.id;
  if (!credentialId) throw new Error("idempotency needs an authenticated credential");
  const path = req.url.split("?", 1)[0]!;
  const result = await claim(req.server.lk, req.server.lk.clock.now(), recordId(credentialId, req.method, path, key), credentialId, requestHash(req));
  if (result.kind === "replay") {
    req.errorCode = "replay";
    sendJsonText(reply.header("idempotent-replayed", "true"), result.status, result.body);
    return true;
  }
  req.idem = result.claim;
  return false;
}

/** Stores the answer (sealed) for replay; call inside the transaction that made the change. */
export async function completeClaim(q: Q, lk: Services, claim: IdempotencyClaim, status: number, body: string): Promise<void> {
  const expiresAt = lk.clock.now() + lk.config.idempotencyRetentionHours * 3_600_000;
  await completeRecord.execute(q, claim.id, status, seal(lk.idempotencySealKey, Buffer.from(body, "utf8"), claim.id), expiresAt);
  claim.completed = true;
}

export async function releaseClaim(store: Store, claim: IdempotencyClaim): Promise<void> {
  await store.db.deleteFrom("idempotency_records").where("id", "=", claim.id).where("state", "=", "in_progress").execute();
  claim.completed = true;
}

/**
 * onSend safety net: an answer sent without going through commitAndRespond or the error handler
 * (a read-only success such as validating an already bound device) still settles its claim, so a
 * retry with the same key replays it instead of waiting out IDEMPOTENCY_IN_PROGRESS.
 */
export function settleClaimOnSend(req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void {
  const c = req.idem;
  if (!c || c.completed) {
    done(null, payload);
    return;
  }
  settleClaim(req, reply, c, payload).then(() => done(null, payload));
}

async function settleClaim(req: FastifyRequest, reply: FastifyReply, c: IdempotencyClaim, payload: unknown): Promise<void> {
  const lk = req.server.lk;
  try {
    if (typeof payload === "string" && isReplayableStatus(reply.statusCode)) await completeClaim(lk.store.db, lk, c, reply.statusCode, payload);
    else await releaseClaim(lk.store, c);
  } catch (err) {
    req.log.error({ err }, "could not settle idempotency record");
  }
}
