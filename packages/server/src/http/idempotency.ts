// Idempotency (D3). A keyed request's record (credential + method + path + key) is written in the
// handler's transaction together with the state change and the response, so a replay returns the
// identical bytes and a crash can never leave "changed but not recorded" (nor a claim to wait out).
// While the request runs, its key is held in this process (InFlightKeys) and a second request with
// it is answered IDEMPOTENCY_IN_PROGRESS. Answers >= 500, 401 and 429 are not stored: a retry runs
// again.
import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { open, seal } from "../crypto/aead.js";
import type { Services } from "../services.js";
import type { Q, Tx } from "../store/db.js";
import { prepare } from "../store/prepared.js";
import { sendJsonText, signedErrorBody } from "./envelope.js";
import { ApiError, isReplayableStatus } from "./errors.js";

/**
 * How long a key held by a request blocks retries before it is presumed abandoned: a key held in this
 * process by a request that never settled, or an unfinished record left by a crashed holder of an
 * earlier version (which wrote the record before its transaction).
 */
export const IN_PROGRESS_TTL_MS = 60_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface IdempotencyClaim {
  /** SHA-256 of credential, method, path and key: the record's id. */
  id: string;
  credentialId: string;
  requestHash: string;
  /** Nothing more to store: the answer is recorded, replayed, refused, or not to be stored. */
  settled: boolean;
  /** An unfinished record of this request is committed (holdKeyFirst): it is completed or deleted. */
  held: boolean;
  /**
   * SQLite: no record was under the key when this request's write transaction read it, and none can
   * appear before the commit, so completeClaim inserts the finished record in one statement.
   */
  insertOnComplete?: boolean;
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

/**
 * The keyed requests this process is answering (D3's "still running"): a second request with a key
 * held here is answered IDEMPOTENCY_IN_PROGRESS at once. The database row of a key is written only in
 * the transaction that makes the change, so between processes that transaction is what orders two
 * requests with one key: the second waits for the first's commit (SQLite's write lock, PostgreSQL's
 * unique index) and then replays its answer. A key left here by a request that never settled (a
 * socket torn down mid-answer) is free again after IN_PROGRESS_TTL_MS.
 */
export class InFlightKeys {
  readonly #since = new Map<string, number>();

  /** Holds `id` for this request; false when another request of this process holds it. */
  enter(id: string): boolean {
    const now = performance.now();
    const since = this.#since.get(id);
    if (since !== undefined && now - since < IN_PROGRESS_TTL_MS) return false;
    this.#since.set(id, now);
    return true;
  }

  leave(id: string): void {
    this.#since.delete(id);
  }

  get size(): number {
    return this.#since.size;
  }
}

/** A stored answer to send instead of this request's own. */
export interface StoredAnswer {
  status: number;
  body: string;
}

const recordById = prepare(1, (q, id: string) => q.selectFrom("idempotency_records").selectAll().where("id", "=", id));
type RecordRow = NonNullable<Awaited<ReturnType<typeof recordById.first>>>;
const insertRecord = prepare(8, (q, id: string, credentialId: string, hash: string, state: "in_progress" | "completed", status: number | null, body: string | null, now: number, expiresAt: number) =>
  q.insertInto("idempotency_records").values({
    id,
    credential_id: credentialId,
    request_hash: hash,
    state,
    response_status: status,
    response_body: body,
    created_at: now,
    expires_at: expiresAt,
  })
    // A key already held leaves no row (and no error): the caller then reads what holds it.
    .onConflict((oc) => oc.column("id").doNothing())
    .returning("id"),
);
const deleteRecord = prepare(1, (q, id: string) => q.deleteFrom("idempotency_records").where("id", "=", id));
const completeRecord = prepare(4, (q, id: string, status: number, body: string, expiresAt: number) =>
  q
    .updateTable("idempotency_records")
    .set({ state: "completed", response_status: status, response_body: body, expires_at: expiresAt })
    .where("id", "=", id)
    .where("state", "=", "in_progress"),
);

/** Marks the claim as needing nothing more and lets the key go in this process. */
function settle(lk: Services, claim: IdempotencyClaim): void {
  claim.settled = true;
  lk.inFlightKeys.leave(claim.id);
}

/**
 * What a record already under the key means for this request: its stored answer (a replay), "free"
 * (completed but past retention, not purged yet), "abandoned" (an unfinished claim past its TTL,
 * left by a crashed holder of an earlier version that claimed keys before the change), or a refusal
 * (thrown): IDEMPOTENCY_CONFLICT for another request under the key, IDEMPOTENCY_IN_PROGRESS while
 * an unfinished claim stands.
 */
function judgeExisting(lk: Services, claim: IdempotencyClaim, existing: RecordRow, now: number): StoredAnswer | "free" | "abandoned" {
  if (existing.state === "completed" && existing.expires_at <= now) return "free";
  if (existing.request_hash !== claim.requestHash) {
    throw new ApiError("IDEMPOTENCY_CONFLICT", "this Idempotency-Key was used with a different request; resend the original request or use a new key");
  }
  if (existing.state === "completed") {
    // Stored bodies are sealed: a create answer may carry a secret shown once (a license key).
    const body = open(lk.idempotencySealKey, existing.response_body ?? "", claim.id).toString("utf8");
    return { status: existing.response_status ?? 200, body };
  }
  if (existing.expires_at > now) {
    throw new ApiError("IDEMPOTENCY_IN_PROGRESS", "a request with this Idempotency-Key is still being processed; retry shortly");
  }
  return "abandoned";
}

/**
 * Writes the key's record with `insert`, or judges the one already there. Returns undefined when this
 * request now holds the key, else the stored answer to replay. Refusals (conflict, in progress)
 * settle the claim, so their answers are not stored under the key.
 */
async function takeKey(
  q: Q,
  lk: Services,
  claim: IdempotencyClaim,
  insert: (now: number) => Promise<unknown>,
  takeOver: (existing: RecordRow, now: number) => Promise<boolean>,
): Promise<StoredAnswer | undefined> {
  const now = lk.clock.now();
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await insert(now)) return undefined;
      const existing = await recordById.first(q, claim.id);
      if (!existing) continue; // purged since the insert found it
      const verdict = judgeExisting(lk, claim, existing, now);
      if (verdict === "free") {
        await q.deleteFrom("idempotency_records").where("id", "=", claim.id).where("expires_at", "=", existing.expires_at).execute();
        continue;
      }
      if (verdict !== "abandoned") {
        settle(lk, claim);
        return verdict;
      }
      if (await takeOver(existing, now)) return undefined;
    }
    throw new ApiError("IDEMPOTENCY_IN_PROGRESS", "a request with this Idempotency-Key is contended; retry shortly");
  } catch (err) {
    if (err instanceof ApiError) settle(lk, claim);
    throw err;
  }
}

/** Takes an abandoned unfinished claim over, if it is still the one judged. */
async function takeOverRecord(q: Q, id: string, existing: RecordRow, set: { created_at?: number; expires_at: number; state?: "completed"; response_status?: number; response_body?: string }): Promise<boolean> {
  const res = await q
    .updateTable("idempotency_records")
    .set(set)
    .where("id", "=", id)
    .where("state", "=", "in_progress")
    .where("expires_at", "=", existing.expires_at)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * The claim, taken inside the transaction that makes the change (commitAndRespond): the record is
 * written by completeClaim before the same commit, so a crash leaves no record at all. Returns the
 * stored answer when the key already holds one (nothing is changed then).
 * - PostgreSQL: an unfinished record is inserted first. Its unique index makes a concurrent request
 *   with the key wait for this transaction, then find the answer; completeClaim fills it in.
 * - SQLite: the transaction took the database's only write lock when it began (BEGIN IMMEDIATE),
 *   so no other request, in this process or another, can write the key before this commit. A read
 *   decides, and completeClaim writes the finished record in one INSERT.
 */
export async function claimInTransaction(trx: Tx, lk: Services, claim: IdempotencyClaim): Promise<StoredAnswer | undefined> {
  if (claim.held) return undefined;
  if (lk.store.engine === "sqlite") return readKeyUnderWriteLock(trx, lk, claim);
  return takeUnfinished(trx, lk, claim);
}

/**
 * takeKey on SQLite, under the transaction's write lock: "inserting" is finding no record under the
 * key (completeClaim then inserts the finished one), and an abandoned record is deleted outright,
 * since nothing else can write the key before this commit.
 */
function readKeyUnderWriteLock(trx: Tx, lk: Services, claim: IdempotencyClaim): Promise<StoredAnswer | undefined> {
  const insertOnComplete = () => {
    claim.insertOnComplete = true;
    return true;
  };
  return takeKey(
    trx,
    lk,
    claim,
    async () => !(await recordById.first(trx, claim.id)) && insertOnComplete(),
    async () => {
      await deleteRecord.execute(trx, claim.id);
      return insertOnComplete();
    },
  );
}

/** takeKey with an unfinished record (in_progress, blocking for IN_PROGRESS_TTL_MS) through `q`. */
function takeUnfinished(q: Q, lk: Services, claim: IdempotencyClaim): Promise<StoredAnswer | undefined> {
  return takeKey(
    q,
    lk,
    claim,
    (now) => insertRecord.first(q, claim.id, claim.credentialId, claim.requestHash, "in_progress", null, null, now, now + IN_PROGRESS_TTL_MS),
    (existing, now) => takeOverRecord(q, claim.id, existing, { created_at: now, expires_at: now + IN_PROGRESS_TTL_MS }),
  );
}

/** Stores the answer (sealed) for replay; call inside the transaction that made the change. */
export async function completeClaim(q: Q, lk: Services, claim: IdempotencyClaim, status: number, body: string): Promise<void> {
  const sealed = sealAnswer(lk, claim, body);
  const expiresAt = retentionEnd(lk);
  if (claim.insertOnComplete) await insertRecord.first(q, claim.id, claim.credentialId, claim.requestHash, "completed", status, sealed, lk.clock.now(), expiresAt);
  else await completeRecord.execute(q, claim.id, status, sealed, expiresAt);
  settle(lk, claim);
}

const sealAnswer = (lk: Services, claim: IdempotencyClaim, body: string) => seal(lk.idempotencySealKey, Buffer.from(body, "utf8"), claim.id);
const retentionEnd = (lk: Services) => lk.clock.now() + lk.config.idempotencyRetentionHours * 3_600_000;

/**
 * Settles a claim whose answer was made outside a write transaction: a thrown error (its transaction,
 * if any, rolled back with the claim) or a read-only success. A replayable answer is stored under the
 * key in one statement; if the key meanwhile holds an answer (another process's request with the
 * same key committed first), that answer is returned to send instead, so every request with the key
 * gets the same bytes. Answers >= 500, 401 and 429 are not stored, so a retry runs again. Throws
 * IDEMPOTENCY_CONFLICT / IDEMPOTENCY_IN_PROGRESS when the key is held by another request.
 */
export async function settleOutside(lk: Services, claim: IdempotencyClaim, status: number, body: string): Promise<StoredAnswer | undefined> {
  if (claim.settled) return undefined;
  const db = lk.store.db;
  // Every way out settles, so the key is never left held in this process.
  try {
    if (claim.held) {
      if (isReplayableStatus(status)) await completeRecord.execute(db, claim.id, status, sealAnswer(lk, claim, body), retentionEnd(lk));
      else await db.deleteFrom("idempotency_records").where("id", "=", claim.id).where("state", "=", "in_progress").execute();
      return undefined;
    }
    if (!isReplayableStatus(status)) return undefined;
    const sealed = sealAnswer(lk, claim, body);
    const expiresAt = retentionEnd(lk);
    return await takeKey(
      db,
      lk,
      claim,
      (now) => insertRecord.first(db, claim.id, claim.credentialId, claim.requestHash, "completed", status, sealed, now, expiresAt),
      (existing) => takeOverRecord(db, claim.id, existing, { state: "completed", response_status: status, response_body: sealed, expires_at: expiresAt }),
    );
  } finally {
    settle(lk, claim);
  }
}

/**
 * For a handler that writes before its commitAndRespond transaction (a report export commits its
 * pending row, then renders): takes the key at once, in a commit of its own (an unfinished record,
 * which blocks the key for every process), so that a replay or a refusal comes before any of the
 * handler's work. Sends the stored answer and returns true when there is one.
 */
export async function holdKeyFirst(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  const claim = req.idem;
  if (!claim || claim.settled || claim.held) return false;
  const lk = req.server.lk;
  const stored = await takeUnfinished(lk.store.db, lk, claim);
  if (!stored) {
    claim.held = true;
    return false;
  }
  markReplay(req, reply);
  sendJsonText(reply, stored.status, stored.body);
  return true;
}

/**
 * preHandler: applies the route's idempotency rule. Runs after authentication (the credential is the
 * scope) and after body validation. Reads and writes nothing: the key is checked where the answer
 * is recorded (claimInTransaction, settleOutside).
 */
export function idempotencyPreHandler(req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  // Most calls carry no key (validate, check, reads).
  const mode = req.routeOptions.config.idempotency;
  if (!mode) {
    done();
    return;
  }
  if (req.headers["idempotency-key"] === undefined) {
    done(mode === "required" ? new ApiError("IDEMPOTENCY_KEY_REQUIRED", "this operation requires an Idempotency-Key header") : undefined);
    return;
  }
  try {
    req.idem = openClaim(req);
    done();
  } catch (err) {
    done(err as Error);
  }
}

/** The request's claim on its key, held in this process until it settles. */
function openClaim(req: FastifyRequest): IdempotencyClaim {
  const header = req.headers["idempotency-key"]!;
  const key = Array.isArray(header) ? header[0] : header;
  if (Array.isArray(header) && header.length > 1) throw new ApiError("BAD_REQUEST", "send one Idempotency-Key header");
  if (key === undefined || !KEY_PATTERN.test(key)) {
    throw new ApiError("BAD_REQUEST", "Idempotency-Key must be 1 to 255 visible ASCII characters");
  }
  const credentialId = req.principal?.id ?? req.runtime?.license.id;
  if (!credentialId) throw new Error("idempotency needs an authenticated credential");
  const path = req.url.split("?", 1)[0]!;
  const id = recordId(credentialId, req.method, path, key);
  if (!req.server.lk.inFlightKeys.enter(id)) {
    throw new ApiError("IDEMPOTENCY_IN_PROGRESS", "a request with this Idempotency-Key is still being processed; retry shortly");
  }
  return { id, credentialId, requestHash: requestHash(req), settled: false, held: false };
}

/** Marks a reply as the replay of a stored answer. */
export function markReplay(req: FastifyRequest, reply: FastifyReply): void {
  req.errorCode = "replay";
  reply.header("idempotent-replayed", "true");
}

/**
 * onSend: an answer sent without going through commitAndRespond or the error handler (a read-only
 * success such as validating an already bound device) still settles its claim: it is stored for
 * replay, or, when the key already holds an answer, that answer (or the key's refusal) is sent.
 */
export function settleClaimOnSend(req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void {
  const c = req.idem;
  if (!c || c.settled) {
    done(null, payload);
    return;
  }
  settleSent(req, reply, c, payload).then((sent) => done(null, sent));
}

async function settleSent(req: FastifyRequest, reply: FastifyReply, c: IdempotencyClaim, payload: unknown): Promise<unknown> {
  const lk = req.server.lk;
  try {
    if (typeof payload !== "string") {
      settle(lk, c);
      return payload;
    }
    const stored = await settleOutside(lk, c, reply.statusCode, payload);
    if (!stored) return payload;
    markReplay(req, reply);
    reply.code(stored.status);
    return stored.body;
  } catch (err) {
    if (err instanceof ApiError) {
      req.errorCode = err.code;
      reply.code(err.status);
      return signedErrorBody(req, err);
    }
    req.log.error({ err }, "could not settle idempotency record");
    return payload;
  }
}
