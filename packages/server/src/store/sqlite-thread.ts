// A worker thread with a SQLite connection of its own, as the serving process's background helpers
// use them (wal-checkpointer.ts, sqlite-batch-writer.ts). The thread's code is a plain CommonJS
// script run with `eval`, so one source serves under tsx and in dist/; it is given better-sqlite3's
// resolved path so that it loads the same module whatever the working directory, and it ends itself
// (closing its connection) when it receives "stop".
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

const SQLITE_MODULE = createRequire(import.meta.url).resolve("better-sqlite3");

export interface SqliteThread {
  worker: Worker;
  /** Resolves when the thread has ended, by "stop", an error or terminate(). */
  exited: Promise<void>;
}

/** Starts `source` on a thread; its `workerData` is `data` plus `sqlite`, the module to require. */
export function startSqliteThread(source: string, data: Record<string, unknown>): SqliteThread {
  const worker = new Worker(source, { eval: true, workerData: { ...data, sqlite: SQLITE_MODULE } });
  return { worker, exited: new Promise((resolve) => worker.once("exit", () => resolve())) };
}

/** Sends "stop" (messages sent before it are handled first), terminates the thread if it has not ended within `graceMs`, and waits for it to end. */
export async function endSqliteThread(thread: SqliteThread, graceMs: number): Promise<void> {
  thread.worker.postMessage("stop");
  const timeout = setTimeout(() => void thread.worker.terminate(), graceMs);
  await thread.exited;
  clearTimeout(timeout);
}
