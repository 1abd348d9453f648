// Background WAL checkpoints for the embedded SQLite database (issue 8). In WAL mode every commit
// appends the pages it changed to the -wal file; a checkpoint copies them back into the database
// file. By default SQLite runs that checkpoint inside whichever commit crosses 1,000 WAL pages, on
// the event loop of the serving process, and it is the costliest part of those commits (copying
// and syncing thousands of pages). While a serving process runs, a worker thread with its own
// connection checkpoints every LICENSEKIT_SQLITE_CHECKPOINT_MS instead, on the other core, and the
// serving connection's own automatic checkpoint only steps in if the WAL grows past
// FALLBACK_AUTOCHECKPOINT_PAGES (the thread has died or cannot keep up).
import type BetterSqlite3 from "better-sqlite3";
import { endSqliteThread, type SqliteThread, startSqliteThread } from "./sqlite-thread.js";

/** The serving connection's own automatic checkpoint while the thread runs: 10,000 pages (~40 MB). */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;
/** SQLite's default, restored when the thread stops. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1_000;

/** What the thread reports after each checkpoint. */
interface CheckpointReport {
  /** false: the checkpoint failed (message says why). */
  ok: boolean;
  /** Frames in the WAL, and how many of them are now in the database file. */
  log: number;
  checkpointed: number;
  /** Another connection held the checkpoint lock; nothing was done this time. */
  busy: boolean;
  message?: string;
}

/**
 * The thread: its own connection to the file, a PASSIVE checkpoint every intervalMs (PASSIVE never
 * waits for readers or writers and never calls the busy handler, so it cannot hold up the serving
 * connection), each result posted back; "stop" closes the connection and lets the thread end.
 * Started by startSqliteThread (store/sqlite-thread.ts).
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Sqlite = require(workerData.sqlite);
const db = new Sqlite(workerData.file, { fileMustExist: true });
function checkpoint() {
  try {
    const row = db.pragma("wal_checkpoint(PASSIVE)")[0];
    return { ok: true, busy: row.busy !== 0, log: row.log, checkpointed: row.checkpointed };
  } catch (err) {
    return { ok: false, busy: false, log: 0, checkpointed: 0, message: err instanceof Error ? err.message : String(err) };
  }
}
const timer = setInterval(() => parentPort.postMessage(checkpoint()), workerData.intervalMs);
parentPort.on("message", (m) => {
  if (m !== "stop") return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointStats {
  /** Checkpoint attempts: all of them, those that found another connection checkpointing (busy), and failures. */
  runs: number;
  busy: number;
  failures: number;
  /** The WAL's size in pages and how many of them were in the database file after the last run. */
  lastLog: number;
  lastCheckpointed: number;
  lastError: string | null;
}

export class WalCheckpointer {
  readonly stats: CheckpointStats = { runs: 0, busy: 0, failures: 0, lastLog: 0, lastCheckpointed: 0, lastError: null };
  #thread: SqliteThread | null = null;

  constructor(
    private readonly raw: BetterSqlite3.Database,
    private readonly file: string,
  ) {}

  get running(): boolean {
    return this.#thread !== null;
  }

  start(intervalMs: number, onError: (err: Error) => void = () => {}): void {
    if (this.#thread) return;
    const thread = startSqliteThread(THREAD_SOURCE, { file: this.file, intervalMs });
    const worker = thread.worker;
    worker.on("message", (r: CheckpointReport) => {
      this.stats.runs += 1;
      if (!r.ok) {
        this.stats.failures += 1;
        this.stats.lastError = r.message ?? "checkpoint failed";
        onError(new Error(`background WAL checkpoint failed: ${this.stats.lastError}`));
        return;
      }
      if (r.busy) this.stats.busy += 1;
      this.stats.lastLog = r.log;
      this.stats.lastCheckpointed = r.checkpointed;
    });
    worker.on("error", (err) => {
      this.stats.lastError = err.message;
      onError(err);
    });
    void thread.exited.then(() => {
      // A thread that ended on its own (an error) leaves the serving connection checkpointing as before.
      if (this.#thread === thread) this.#stopped();
    });
    // After the listeners (a 'message' listener refs the thread): a serving process that exits
    // without closing its store is not held up by this thread.
    worker.unref();
    this.#thread = thread;
    this.raw.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
  }

  /** Ends the thread (its connection closed) and gives checkpoints back to the serving connection. */
  async stop(): Promise<void> {
    const thread = this.#thread;
    if (!thread) return;
    this.#stopped();
    await endSqliteThread(thread, 2000);
  }

  #stopped(): void {
    this.#thread = null;
    if (this.raw.open) this.raw.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
  }
}
