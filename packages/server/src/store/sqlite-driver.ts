// Kysely driver for better-sqlite3 that (1) opens write transactions with BEGIN IMMEDIATE, so a
// transaction takes the write lock before it reads and two processes on one file serialize instead
// of failing on lock upgrade, (2) caches prepared statements, which Kysely's stock driver
// re-prepares on every query, (3) compiles LIMIT/OFFSET parameters so that SQLite does not
// re-prepare the cached statement for each new value, and (4) reads rows as arrays and makes each
// row's object with a function written for the statement's columns (see `rowMaker`), and (5) waits
// for another process's write lock without blocking the event loop (see `untilUnlocked`).
import type BetterSqlite3 from "better-sqlite3";
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type LimitNode,
  type OffsetNode,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";

const STATEMENT_CACHE_SIZE = 500;

class Mutex {
  #locked = false;
  #waiters: (() => void)[] = [];
  async lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  unlock(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }
}

type Row = Record<string, unknown>;
type RowMaker = (values: unknown[]) => Row;

/**
 * A function that turns one row's values, in the statement's column order, into the row object:
 * `(v) => ({ "id": v[0], "name": v[1], … })`, written once per statement. better-sqlite3's own row
 * objects cost ~26,000 instructions each under callgrind (every column name made an internalized
 * string and set one property at a time, leaving the object in V8's dictionary mode: a hash table
 * that is also slower to read). An object literal of a fixed shape is made in a few hundred, and
 * every row of one statement shares one hidden class. As with better-sqlite3's objects, a name that
 * appears twice keeps the later column's value. Column names come from SQLite and are written as
 * JSON string literals, so no name can be read as code. The runtime cache makes its copies of rows
 * with it too (`fastCopy` in cache/runtime-cache.ts).
 */
export function rowMaker(names: readonly string[]): RowMaker {
  // A quoted "__proto__" key in a literal would set the prototype; a computed one defines a property.
  const fields = names.map((n, i) => `${n === "__proto__" ? '["__proto__"]' : JSON.stringify(n)}: v[${i}]`);
  return new Function("v", `"use strict"; return { ${fields.join(", ")} };`) as RowMaker;
}

interface RowShape {
  width: number;
  make: RowMaker;
}

interface CachedStatement {
  stmt: BetterSqlite3.Statement;
  /** For a statement that returns rows (SELECT, … RETURNING): in raw mode, with its row maker. */
  rows: RowShape | null;
  /** CREATE, ALTER or DROP: the cached statements' columns may change after it, so the cache is emptied. */
  ddl: boolean;
}

function rowsOf(stmt: BetterSqlite3.Statement): RowShape {
  const names = stmt.columns().map((c) => c.name);
  return { width: names.length, make: rowMaker(names) };
}

/** What the lock waits of one connection came to, since it opened. */
export interface SqliteLockWaits {
  /** Statements that found the write lock taken, waited, and then ran. */
  acquired: number;
  /** Times a waiting statement was tried again. */
  retries: number;
  /** Statements that gave up after the wait's timeout (their SQLITE_BUSY went up). */
  timeouts: number;
}

/** How long the n-th retry (0-based) waits: the next turn of the event loop for the first few, then 1, 2 and at most 4 ms. */
export function busyRetryDelayMs(n: number): number {
  if (n < 4) return 0;
  if (n < 12) return 1;
  return n < 20 ? 2 : 4;
}

const isBusy = (err: unknown): boolean => /^SQLITE_BUSY/.test((err as { code?: string })?.code ?? "");
interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
/** Resolves when `p` does or after `ms`, whichever comes first. */
function within(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    p.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
const pause = (ms: number) => new Promise<void>((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));

class CachedSqliteConnection implements DatabaseConnection {
  readonly #cache = new Map<string, CachedStatement>();
  /** Held from acquireConnection to releaseConnection: one query or one transaction at a time. */
  readonly mutex = new Mutex();
  readonly lockWaits: SqliteLockWaits = { acquired: 0, retries: 0, timeouts: 0 };
  /** The waiter that keeps trying for the write lock, and what the others wait for: it got the lock or gave up. */
  #leader: { id: object; done: Deferred } | null = null;
  constructor(
    readonly db: BetterSqlite3.Database,
    /** How long a write waits for another process's write lock (LICENSEKIT_SQLITE_LOCK_WAIT_MS). */
    readonly lockWaitMs: number,
  ) {}

  #prepare(sqlText: string): CachedStatement {
    let cached = this.#cache.get(sqlText);
    if (cached) return cached;
    const stmt = this.db.prepare(sqlText);
    cached = { stmt, rows: stmt.reader ? rowsOf(stmt.raw(true)) : null, ddl: /^\s*(create|alter|drop)\b/i.test(sqlText) };
    if (this.#cache.size >= STATEMENT_CACHE_SIZE) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(sqlText, cached);
    return cached;
  }

  /** BEGIN IMMEDIATE / COMMIT / ROLLBACK of the driver, prepared once (db.exec would parse them on every transaction). */
  control(which: "begin immediate" | "commit" | "rollback"): void {
    this.#prepare(which).stmt.run();
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    return this.untilUnlocked(() => this.run<R>(compiled));
  }

  /**
   * Waiting for the write lock of another process (`serve --workers N`, a CLI command beside the
   * server, a second server on the same file). The connection's own busy handler is off
   * (`busy_timeout = 0`): SQLite's would sleep inside the statement, and better-sqlite3 runs
   * statements on the event loop's thread, so a process waiting for the lock could answer nothing
   * else meanwhile (not even a validation from its cache) and slept in steps of up to 100 ms.
   *
   * Runs `attempt` now; while it fails with SQLITE_BUSY outside a transaction (so nothing of it
   * ran: a BEGIN IMMEDIATE, or a statement in autocommit mode), runs it again after a pause
   * (`busyRetryDelayMs`), the process serving other requests in between, until `lockWaitMs` has
   * passed; then its SQLITE_BUSY goes up (answered 503 with Retry-After, see isDatabaseUnavailable).
   * Inside a transaction the write lock is already held, so a busy error there is not a lock wait
   * and goes up at once. Without a wait the result is returned as it is, not in a promise (the
   * root queries of every request pass through here).
   *
   * The caller holds the mutex. While it waits the mutex is let go, so this process's reads (a
   * validation's cache miss, a management list) run meanwhile, and taken again before the next
   * attempt. Only one waiter of the process (the leader) keeps trying; the others wait until it
   * gets the lock or gives up, then try in turn, so a process with many queued writes does not
   * make many attempts per pause.
   */
  untilUnlocked<T>(attempt: () => T): T | Promise<T> {
    try {
      return attempt();
    } catch (err) {
      if (!isBusy(err) || this.db.inTransaction) throw err;
    }
    return this.#waitForLock(attempt, performance.now() + this.lockWaitMs);
  }

  /** untilUnlocked after its first attempt found the lock taken. */
  async #waitForLock<T>(attempt: () => T, deadline: number): Promise<T> {
    const me = {};
    try {
      for (let n = 0; ; n++) {
        this.lockWaits.retries++;
        this.mutex.unlock();
        if (this.#leader === null) this.#leader = { id: me, done: deferred() };
        if (this.#leader.id === me) await pause(busyRetryDelayMs(n));
        else await within(this.#leader.done.promise, deadline - performance.now());
        await this.mutex.lock();
        try {
          const result = attempt();
          this.lockWaits.acquired++;
          return result;
        } catch (err) {
          if (!isBusy(err) || this.db.inTransaction) throw err;
          if (performance.now() >= deadline) {
            this.lockWaits.timeouts++;
            throw err;
          }
        }
      }
    } finally {
      if (this.#leader?.id === me) {
        this.#leader.done.resolve();
        this.#leader = null;
      }
    }
  }

  /** Runs a query now (better-sqlite3 is synchronous); executeQuery's promise wraps this. */
  run<R>(compiled: CompiledQuery): QueryResult<R> {
    const params = compiled.parameters as unknown[];
    if (/^\s*(begin|commit|rollback|savepoint|release)/i.test(compiled.sql)) {
      this.db.exec(compiled.sql);
      return { rows: [] };
    }
    const cached = this.#prepare(compiled.sql);
    if (cached.rows) return { rows: this.#read(cached, params) as R[] };
    const { changes, lastInsertRowid } = cached.stmt.run(params);
    // A schema change can give a cached `select *` other columns (SQLite re-prepares it by itself).
    if (cached.ddl) this.#cache.clear();
    return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) };
  }

  #read(cached: CachedStatement, params: unknown[]): Row[] {
    const values = cached.stmt.all(params) as unknown[][];
    let rows = cached.rows!;
    // Columns added under a cached statement by another connection: read its columns again.
    if (values.length > 0 && values[0]!.length !== rows.width) rows = cached.rows = rowsOf(cached.stmt);
    const out = new Array<Row>(values.length);
    for (let i = 0; i < values.length; i++) out[i] = rows.make(values[i]!);
    return out;
  }

  // biome-ignore lint/correctness/useYield: streaming is not used by this project
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on SQLite");
  }
}

class ImmediateSqliteDriver implements Driver {
  readonly #connection: CachedSqliteConnection;
  constructor(connection: CachedSqliteConnection) {
    this.#connection = connection;
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#connection.mutex.lock();
    return this.#connection;
  }
  async beginTransaction(): Promise<void> {
    await this.#connection.untilUnlocked(() => this.#connection.control("begin immediate"));
  }
  async commitTransaction(): Promise<void> {
    this.#connection.control("commit");
  }
  async rollbackTransaction(): Promise<void> {
    // After SQLITE_BUSY on BEGIN there is no transaction to roll back.
    if (this.#connection.db.inTransaction) this.#connection.control("rollback");
  }
  async releaseConnection(): Promise<void> {
    this.#connection.mutex.unlock();
  }
  async destroy(): Promise<void> {
    this.#connection.db.close();
  }
}

/**
 * SQLite's planner looks at the value of a LIMIT or OFFSET given as a bare parameter, so each new
 * binding of one makes the prepared statement prepare itself again: a one-row indexed read with
 * `limit ?` took 2.5 µs instead of 0.3 (and ~25 µs of a loaded server's activate). Written `+?`, the
 * same value no longer reaches the planner and the statement runs as prepared.
 */
class SqliteCompiler extends SqliteQueryCompiler {
  protected override visitLimit(node: LimitNode): void {
    this.append("limit +");
    this.visitNode(node.limit);
  }
  protected override visitOffset(node: OffsetNode): void {
    this.append("offset +");
    this.visitNode(node.offset);
  }
}

/** The one connection behind each SQLite Kysely instance, by that instance's adapter (its transactions share it). */
const connectionOfAdapter = new WeakMap<object, CachedSqliteConnection>();

/** What a prepared query needs of the connection behind a SQLite transaction. */
export interface SqliteTransactionConnection {
  run<R>(compiled: CompiledQuery): QueryResult<R>;
}

/**
 * For a transaction of a SQLite handle without plugins: the connection it holds, on which a compiled
 * query can run at once. The transaction holds the database's one connection (and the driver's
 * mutex) from BEGIN to COMMIT, and better-sqlite3 runs a statement synchronously, so the statement
 * runs exactly where Kysely's executor would have run it, without the promises Kysely's executor and
 * its single-connection queue add to every query. Undefined for PostgreSQL, a root handle (it must
 * wait for the mutex) and a handle with plugins (they must see every query).
 */
export function sqliteTransactionConnection(q: {
  isTransaction: boolean;
  getExecutor(): { adapter: object; plugins: readonly unknown[] };
}): SqliteTransactionConnection | undefined {
  if (!q.isTransaction) return undefined;
  const executor = q.getExecutor();
  return executor.plugins.length === 0 ? connectionOfAdapter.get(executor.adapter) : undefined;
}

export class ImmediateSqliteDialect implements Dialect {
  readonly #connection: CachedSqliteConnection;
  /** `db` must have its busy handler off (`busy_timeout = 0`); waits of up to `lockWaitMs` replace it. */
  constructor(db: BetterSqlite3.Database, lockWaitMs: number) {
    this.#connection = new CachedSqliteConnection(db, lockWaitMs);
  }
  /** The lock waits of this handle's connection (live counters). */
  get lockWaits(): SqliteLockWaits {
    return this.#connection.lockWaits;
  }
  createAdapter() {
    const adapter = new SqliteAdapter();
    connectionOfAdapter.set(adapter, this.#connection);
    return adapter;
  }
  createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#connection);
  }
  createQueryCompiler() {
    return new SqliteCompiler();
  }
  // biome-ignore lint/suspicious/noExplicitAny: Kysely's introspector takes any database type
  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}
