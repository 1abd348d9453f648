// Metrics moved on every request, kept as plain numbers and handed to the Prometheus registry only
// when /metrics is scraped (issue 8). A prom-client child validates and hashes its label values on
// each inc/observe; here a request adds 1 to a number it already holds (a cell or a histogram
// child, made once per label set) and the scrape does the labelled work.
//
// - BatchedCounter: cells whose counts its prom-client Counter takes in collect() at scrape time.
// - LocalHistogram: a histogram of its own, registered with the registry and read by the scrape
//   (same exposition as prom-client's: _bucket with cumulative `le` counts, _sum, _count).
import { Counter, type LabelValues, type Metric, type Registry } from "prom-client";

/** One printed line's worth, as prom-client's registry reads it from a metric's get(). */
interface ExportValue {
  metricName: string;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
}

interface HistogramExport {
  name: string;
  help: string;
  type: "histogram";
  aggregator: "sum";
  values: ExportValue[];
}

/** A count for one label set; the hot path adds to `n`. */
export interface CountCell {
  n: number;
}

/** Cells of a prom-client counter it registers: the counter takes what they counted when scraped. */
export class BatchedCounter<L extends string> {
  readonly #cells = new Map<string, CountCell & { labels: LabelValues<L> }>();
  readonly #counter: Counter<L>;

  constructor(registry: Registry, name: string, help: string, labelNames: L[]) {
    this.#counter = new Counter({ name, help, labelNames, registers: [registry], collect: () => this.flush() });
  }

  /** The cell of this label set (the same object every time; keep it). */
  cell(labels: LabelValues<L>): CountCell {
    const key = labelKey(labels);
    let c = this.#cells.get(key);
    if (c === undefined) {
      c = { labels, n: 0 };
      this.#cells.set(key, c);
    }
    return c;
  }

  /** Moves what the cells counted into the counter (at scrape time). */
  flush(): void {
    for (const c of this.#cells.values()) {
      if (c.n === 0) continue;
      this.#counter.inc(c.labels, c.n);
      c.n = 0;
    }
  }
}

export interface HistogramChild {
  observe(value: number): void;
}

class LocalHistogramChild implements HistogramChild {
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

export class LocalHistogram<L extends string = never> implements HistogramChild {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #children = new Map<string, LocalHistogramChild>();
  readonly #bounds: readonly number[];
  #unlabelled: LocalHistogramChild | null = null;

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.#bounds = [...buckets].sort((a, b) => a - b);
    registry.registerMetric(this as unknown as Metric);
  }

  /** The child of this label set (the same object every time; keep it). */
  labels(labels: Record<L, string>): HistogramChild {
    const key = labelKey(labels);
    let c = this.#children.get(key);
    if (c === undefined) {
      c = new LocalHistogramChild(labels, this.#bounds);
      this.#children.set(key, c);
    }
    return c;
  }

  /** For a histogram without labels. */
  observe(value: number): void {
    if (this.#unlabelled === null) {
      this.#unlabelled = new LocalHistogramChild({}, this.#bounds);
      this.#children.set("", this.#unlabelled);
    }
    this.#unlabelled.observe(value);
  }

  /** What the registry prints (called by the scrape), laid out as prom-client's Histogram does: `le` first, then the child's labels. */
  async getForPromString(): Promise<HistogramExport> {
    const values: ExportValue[] = [];
    for (const c of this.#children.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += c.counts[i]!;
        const le = i < this.#bounds.length ? this.#bounds[i]! : "+Inf";
        values.push({ metricName: `${this.name}_bucket`, labels: { le }, sharedLabels: c.labels, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: {}, sharedLabels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: {}, sharedLabels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The same values with each child's labels merged in (getMetricsAsJSON). */
  async get(): Promise<HistogramExport> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, ...rest }) => ({ ...rest, labels: { ...rest.labels, ...sharedLabels } }));
    return data;
  }

  reset(): void {
    for (const c of this.#children.values()) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }
}

/** Label values joined in key order (label names come from a fixed list, values from routes and codes). */
function labelKey(labels: Record<string, unknown>): string {
  let key = "";
  for (const name of Object.keys(labels).sort()) key += `${name}\u0001${String(labels[name])}\u0002`;
  return key;
}
