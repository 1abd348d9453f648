// Each request's logger (`req.log`), made only when the request logs something (issue 8). Fastify
// gives every request a pino child logger bound to its request id; making one serialises the
// bindings and sets up redaction, ~2 µs per request, while most requests (every answer below the
// `info` level, the bench's validations) never write a line. This logger stands in for that child
// and makes it on the first call at an enabled level, so what is written is the same.
import type { FastifyBaseLogger } from "fastify";

type Bindings = Parameters<FastifyBaseLogger["child"]>[0];
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger["child"]>[1]>;
type Level = "fatal" | "error" | "warn" | "info" | "debug" | "trace";
type LevelMethod = (this: FastifyBaseLogger, ...args: unknown[]) => void;
/** pino's loggers have it; another logger is asked by making the child. */
type LevelAware = { isLevelEnabled?(level: string): boolean };

export class DeferredChildLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The child logger, made on first use. */
  get #made(): FastifyBaseLogger {
    if (this.#child === null) this.#child = this.parent.child(this.bindings, this.options);
    return this.#child;
  }

  get level(): string {
    return this.#child?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.#made.level = level;
  }

  #write(level: Level, args: unknown[]): void {
    // A level the parent does not write is not written by its child either (unless its level was changed, which makes it).
    if (this.#child === null && (this.parent as LevelAware).isLevelEnabled?.(level) === false) return;
    (this.#made[level] as LevelMethod)(...args);
  }

  fatal(...args: unknown[]): void {
    this.#write("fatal", args);
  }
  error(...args: unknown[]): void {
    this.#write("error", args);
  }
  warn(...args: unknown[]): void {
    this.#write("warn", args);
  }
  info(...args: unknown[]): void {
    this.#write("info", args);
  }
  debug(...args: unknown[]): void {
    this.#write("debug", args);
  }
  trace(...args: unknown[]): void {
    this.#write("trace", args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#made.child(bindings, options);
  }
}

/** Fastify's `childLoggerFactory` for a pino logger: a deferred child per request. */
export function deferredChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new DeferredChildLogger(logger, bindings, options);
}
