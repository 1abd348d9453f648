// The batched side effects of a serving process on SQLite (device and API key stamps, call counts;
// jobs/side-effects.ts), written by a thread with a connection of its own (issue 8). better-sqlite3
// runs every statement on the calling thread, so on the event loop a flush cost each validate a
// few µs of SQLite work, Kysely's query building and the transaction's commit. Here the serving
// thread only builds each chunk's parameters and posts them; the thread runs the chunk as one
// BEGIN IMMEDIATE … COMMIT on the other core and reports how it ended.
//
// Its connection waits for the write lock in SQLite's own busy handler (busy_timeout =
// LICENSEKIT_SQLITE_LOCK_WAIT_MS): sleeping there holds up only this thread. While it holds the lock,
// the serving connection's writes wait as they do for another process's (sqlite-driver.ts,
// `untilUnlocked`). Each chunk is one transaction, as on the event loop: what it reports failed was
// rolled back whole, and the caller puts it back for the next flush.
import { endSqliteThread, type SqliteThread, startSqliteThread } from "./sqlite-thread.js";

/** One statement of a chunk: SQL text with `?` placeholders and its values. */
export interface BatchStatement {
  sql: string;
  params: unknown[];
}

interface BatchReport {
  id: number;
  ok: boolean;
  message?: string;
  code?: string;
}

/**
 * The thread: its connection (WAL is already set on the file; foreign keys and synchronous as the
 * serving connection's), a bounded cache of prepared statements, and one transaction per message.
 * Messages are handled in the order they were posted, so "stop" comes after every chunk sent before it.
 * Started by startSqliteThread (store/sqlite-thread.ts), like the checkpoint thread.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Sqlite = require(workerData.sqlite);
const db = new Sqlite(workerData.file, { fileMustExist: true });
db.pragma("busy_timeout = " + workerData.busyTimeoutMs);
db.pragma("foreign_keys = ON");
db.pragma("synchronous = NORMAL");
const begin = db.prepare("BEGIN IMMEDIATE");
const commit = db.prepare("COMMIT");
const rollback = db.prepare("ROLLBACK");
const statements = new Map();
function prepared(sql) {
  let s = statements.get(sql);
  if (s === undefined) {
    if (statements.size >= 64) statements.delete(statements.keys().next().value);
    s = db.prepare(sql);
    statements.set(sql, s);
  }
  return s;
}
parentPort.on("message", (m) => {
  if (m === "stop") {
    db.close();
    parentPort.close();
    return;
  }
  try {
    begin.run();
    try {
      for (const s of m.statements) prepared(s.sql).run(s.params);
      commit.run();
    } catch (err) {
      if (db.inTransaction) rollback.run();
      throw err;
    }
    parentPort.postMessage({ id: m.id, ok: true });
  } catch (err) {
    parentPort.postMessage({ id: m.id, ok: false, message: err instanceof Error ? err.message : String(err), code: err && err.code });
  }
});
`;

interface Waiting {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SqliteBatchWriter {
  /** Chunks committed and failed by the thread since the process started. */
  readonly stats = { committed: 0, failed: 0 };
  #thread: SqliteThread | null = null;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;

  constructor(
    private readonly file: string,
    private readonly lockWaitMs: number,
  ) {}

  /** Started and not ended: chunks can be written through the thread. */
  get running(): boolean {
    return this.#thread !== null;
  }

  start(onError: (err: Error) => void = () => {}): void {
    if (this.#thread) return;
    const thread = startSqliteThread(THREAD_SOURCE, { file: this.file, busyTimeoutMs: this.lockWaitMs });
    const worker = thread.worker;
    worker.on("message", (r: BatchReport) => this.#settle(r));
    worker.on("error", onError);
    void thread.exited.then(() => {
      // A thread that ended on its own (an error): its unanswered chunks failed, and later flushes
      // write on the event loop again (SideEffects checks `running` per chunk).
      if (this.#thread === thread) this.#thread = null;
      this.#failWaiting("the SQLite batch thread ended");
    });
    // Unreferenced while idle, so a process is not kept alive by it; referenced while a chunk is
    // out, so a process that awaits a flush (shutdown) does not exit before the answer.
    worker.unref();
    this.#thread = thread;
  }

  /** Runs `statements` in one transaction on the thread; resolves when it committed, rejects when it did not. */
  write(statements: BatchStatement[]): Promise<void> {
    const worker = this.#thread?.worker;
    if (!worker) return Promise.reject(new Error("the SQLite batch thread is not running"));
    const id = this.#nextId++;
    if (this.#waiting.size === 0) worker.ref();
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, statements });
    });
  }

  /** Lets the thread finish the chunks already sent, then closes its connection and ends it. */
  async stop(): Promise<void> {
    const thread = this.#thread;
    if (!thread) return;
    this.#thread = null;
    await endSqliteThread(thread, 5000);
  }

  #settle(r: BatchReport): void {
    const w = this.#waiting.get(r.id);
    if (!w) return;
    this.#waiting.delete(r.id);
    if (this.#waiting.size === 0) this.#thread?.worker.unref();
    if (r.ok) {
      this.stats.committed += 1;
      w.resolve();
      return;
    }
    this.stats.failed += 1;
    w.reject(Object.assign(new Error(r.message ?? "batch write failed"), r.code ? { code: r.code } : {}));
  }

  #failWaiting(why: string): void {
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    this.stats.failed += waiting.length;
    for (const w of waiting) w.reject(new Error(why));
  }
}
