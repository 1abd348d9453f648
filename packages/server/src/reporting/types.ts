// The shapes shared by the reporting reads (NOTES §19) and the frozen exports (NOTES §20): an
// export stores one ReportSnapshot, taken once, and renders it as JSON, CSV or PDF.

export const REPORT_KINDS = ["usage-summary", "usage-ledger", "license-audit", "customer-summary", "subscription-settlement"] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export function isReportKind(s: string): s is ReportKind {
  return (REPORT_KINDS as readonly string[]).includes(s);
}

/** Validated filters of one report kind: parameter name → value as given (times RFC 3339). */
export type ReportFilters = Record<string, string | number>;

/** A cell of the report's table. */
export type ReportCell = string | number | null;

export interface ReportSnapshot {
  report_kind: ReportKind;
  /** RFC 3339: when the snapshot was taken. */
  generated_at: string;
  filters: ReportFilters;
  /** Report-specific totals and headline figures (the same object the live read answers). */
  summary: Record<string, unknown>;
  /** The report's rows, as a table (CSV and PDF render this). */
  table: { columns: string[]; rows: ReportCell[][] };
  /** One series for the PDF chart: labels and non-negative values, at most a few dozen points. */
  chart: { title: string; labels: string[]; values: number[] };
}
