// Queries built and compiled once, then run with new parameter values (issue 8). Kysely builds an
// immutable query tree and compiles it to SQL on every execution; for the statements every
// validate miss and every runtime write runs, that was more CPU than SQLite spent running them.
// A prepared query is written with the ordinary builder, compiled on first use per dialect, and
// afterwards only its parameter values change (the SQLite driver also reuses the statement
// prepared for that SQL text).
import { type Compilable, type CompiledQuery, NoResultError, type QueryNode } from "kysely";
import type { Q } from "./db.js";
import { sqliteTransactionConnection } from "./sqlite-driver.js";

/** Stands for the i-th argument while compiling; never sent to a database. */
function slot(i: number): string {
  return `\u0000prepared-slot-${i}\u0000`;
}

interface Compiled<Row> {
  query: CompiledQuery<Row>;
  /** For each argument, the positions of the compiled parameters it fills. */
  positions: number[][];
}

export class PreparedQuery<Row, Args extends unknown[]> {
  /** Per dialect: keyed by the executor's adapter, which a root handle and its transactions share. */
  readonly #compiled = new WeakMap<object, Compiled<Row>>();

  constructor(
    private readonly arity: Args["length"],
    private readonly build: (q: Q, ...args: Args) => Compilable<Row>,
  ) {}

  #compile(q: Q): Compiled<Row> {
    const executor = q.getExecutor();
    // A handle with plugins (tests count queries with one) compiles every time, so each plugin sees
    // and may rewrite every query, as with the plain builder.
    const reuse = executor.plugins.length === 0;
    let c = reuse ? this.#compiled.get(executor.adapter) : undefined;
    if (c === undefined) {
      const slots = Array.from({ length: this.arity }, (_, i) => slot(i)) as Args;
      const query = this.build(q, ...slots).compile();
      const positions = slots.map((s) => query.parameters.flatMap((p, at) => (p === s ? [at] : [])));
      const missing = positions.findIndex((p) => p.length === 0);
      if (missing !== -1) throw new Error(`prepared query: argument ${missing} is not a parameter of ${query.sql}`);
      c = { query, positions };
      if (reuse) this.#compiled.set(executor.adapter, c);
    }
    return c;
  }

  async execute(q: Q, ...args: Args): Promise<Row[]> {
    const { query, positions } = this.#compile(q);
    const parameters = query.parameters.slice();
    for (let i = 0; i < positions.length; i++) for (const at of positions[i]!) parameters[at] = args[i];
    const compiled: CompiledQuery<Row> = { ...query, parameters };
    // Inside a SQLite transaction the statement runs at once on the transaction's connection.
    const connection = sqliteTransactionConnection(q);
    if (connection) return connection.run<Row>(compiled).rows;
    const result = await q.executeQuery<Row>(compiled);
    return result.rows;
  }

  async first(q: Q, ...args: Args): Promise<Row | undefined> {
    return (await this.execute(q, ...args))[0];
  }

  /** The first row, which must exist (Kysely's NoResultError otherwise, as executeTakeFirstOrThrow). */
  async one(q: Q, ...args: Args): Promise<Row> {
    const row = await this.first(q, ...args);
    if (row === undefined) throw new NoResultError(this.#compile(q).query.query as QueryNode);
    return row;
  }
}

/** A query from `build`, compiled once per dialect; `arity` is how many arguments it takes. */
export function prepare<Row, Args extends unknown[]>(arity: Args["length"], build: (q: Q, ...args: Args) => Compilable<Row>): PreparedQuery<Row, Args> {
  return new PreparedQuery(arity, build);
}

/** `C` when it names every key of `R` (so a column added to a table type cannot be left out), else never. */
type EveryColumn<R, C extends readonly string[]> = [Exclude<keyof R, C[number]>] extends [never] ? C : never;

/**
 * A prepared statement that takes one row object: `build` gets a row whose every column (all of
 * them, checked by the compiler) is an argument, and execution takes the values from the row given.
 */
export function prepareRow<R extends Record<string, unknown>, Row = never, const C extends readonly (keyof R & string)[] = readonly (keyof R & string)[]>(
  columns: C & EveryColumn<R, C>,
  build: (q: Q, row: R) => Compilable<Row>,
): { execute(q: Q, row: R): Promise<Row[]>; one(q: Q, row: R): Promise<Row> } {
  const prepared = new PreparedQuery<Row, unknown[]>(columns.length, (q, ...values) =>
    build(q, Object.fromEntries(columns.map((c, i) => [c, values[i]])) as R),
  );
  const values = (row: R) => columns.map((c) => row[c]);
  return {
    execute: (q, row) => prepared.execute(q, ...values(row)),
    one: (q, row) => prepared.one(q, ...values(row)),
  };
}
