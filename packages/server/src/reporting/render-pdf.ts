// PDF rendering of a frozen report snapshot (NOTES §20: "PDF is a render layer over the frozen
// snapshot"). pdfkit with the built-in Helvetica, so nothing is embedded and no external tool runs.
//
// Layout (A4 landscape): page 1 holds the title ("LicenseKit — <report> (<kind>)"), generation
// time, snapshot digest, filters, the summary figures and a bar chart of snapshot.chart drawn with
// vector shapes (axes, gridlines, bars, value and category labels); the table follows on page 2 and
// later, its header repeated on each page, column widths fitted to the content and the page, text
// that does not fit cut with "…", numbers right-aligned. Every page has a footer with the page
// number ("Page i of n").
//
// Deterministic bytes: CreationDate and ModDate are the snapshot's generated_at, and pdfkit derives
// the trailer /ID from the info dictionary (an MD5 of its values), so the same snapshot always gives
// the same file (zlib's deflate is deterministic too). The artifact is still rendered only once and
// stored; determinism makes it checkable, not recomputed.
//
// Helvetica covers Windows-1252 only: characters outside it print as "?" in the PDF (the JSON and
// CSV exports keep them exactly).
import PDFDocument from "pdfkit";
import type { ReportCell, ReportSnapshot } from "./types.js";

export const PDF_CONTENT_TYPE = "application/pdf";

type Doc = PDFKit.PDFDocument;

const MARGIN = 36;
const A4_LANDSCAPE = [841.89, 595.28] as const;
/** Widest table page (about 85 cm); wider tables cut their longest cells. */
const MAX_PAGE_WIDTH = 2400;
const YIELD_EVERY_ROWS = 200;
const FOOTER_H = 18;
const FONT = "Helvetica";
const BOLD = "Helvetica-Bold";
const INK = "#1f2933";
const MUTED = "#52606d";
const RULE = "#9aa5b1";
const GRID = "#d9dee3";
const BAR = "#2f6fb3";
const STRIPE = "#f1f4f7";
const HEAD_FILL = "#dde5ee";

const KIND_NAMES: Record<string, string> = {
  "usage-summary": "Usage summary",
  "usage-ledger": "Usage ledger",
  "license-audit": "License audit",
  "customer-summary": "Customer summary",
  "subscription-settlement": "Subscription settlement",
};

/** The title line of a report: `LicenseKit — Usage ledger (usage-ledger)`. */
export function pdfTitle(kind: string): string {
  return `LicenseKit — ${KIND_NAMES[kind] ?? kind} (${kind})`;
}

// Characters Helvetica can draw: printable ASCII, Latin-1, and the Windows-1252 extras pdfkit maps.
const WIN_ANSI_EXTRA = new Set([
  0x192, 0x2013, 0x2014, 0x2018, 0x2019, 0x201a, 0x201c, 0x201d, 0x201e, 0x2020, 0x2021, 0x2022, 0x2026, 0x20ac, 0x2030, 0x2039, 0x203a, 0x2c6, 0x2122, 0x152,
  0x153, 0x2dc, 0x160, 0x161, 0x178, 0x17d, 0x17e,
]);

/** Text as Helvetica can show it: control characters become spaces, others outside WinAnsi "?". */
export function pdfSafeText(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c === 0x7f) out += " ";
    else if (c < 0x7f || (c >= 0xa0 && c <= 0xff) || WIN_ANSI_EXTRA.has(c)) out += ch;
    else out += "?";
  }
  return out;
}

export interface PdfOptions {
  /** Hex SHA-256 of the snapshot's canonical JSON, printed under the title. */
  digest: string;
}

export async function renderPdf(snapshot: ReportSnapshot, opts: PdfOptions): Promise<Buffer> {
  const created = new Date(snapshot.generated_at);
  if (Number.isNaN(created.getTime())) throw new Error(`snapshot generated_at is not a date: ${snapshot.generated_at}`);
  const title = pdfTitle(snapshot.report_kind);
  const doc: Doc = new PDFDocument({
    size: "A4",
    layout: "landscape",
    margin: MARGIN,
    bufferPages: true,
    compress: true,
    pdfVersion: "1.4",
    info: {
      Title: pdfSafeText(title),
      Author: "LicenseKit",
      Subject: `${snapshot.report_kind} report export`,
      Creator: "LicenseKit",
      Producer: "LicenseKit (pdfkit)",
      CreationDate: created,
      ModDate: created,
    },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("data", (c: Buffer) => chunks.push(c));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });

  const r = new Renderer(doc);
  r.overview(snapshot, title, opts.digest);
  r.chart(snapshot.chart);
  await r.table(snapshot.table);
  r.footers(snapshot);
  doc.end();
  return done;
}

class Renderer {
  readonly left = MARGIN;

  constructor(readonly doc: Doc) {}

  // The geometry of the current page (table pages may be wider than A4).
  get right(): number {
    return this.doc.page.width - MARGIN;
  }
  get width(): number {
    return this.right - this.left;
  }
  get bottom(): number {
    return this.doc.page.height - MARGIN - FOOTER_H;
  }

  /** One line of text at (x, y), cut to `width` with "…"; never wraps, never adds a page. */
  line(text: string, x: number, y: number, width: number, opts: { font?: string; size?: number; color?: string; align?: "left" | "right" | "center" } = {}) {
    const { doc } = this;
    doc
      .font(opts.font ?? FONT)
      .fontSize(opts.size ?? 9)
      .fillColor(opts.color ?? INK);
    if (width <= 0) return;
    const fitted = this.fit(pdfSafeText(text), width);
    if (fitted !== "") doc.text(fitted, x, y, { width, align: opts.align ?? "left", lineBreak: false });
  }

  /** The longest prefix of `text` that fits `width` at the current font, with "…" when cut. */
  fit(text: string, width: number): string {
    const { doc } = this;
    if (doc.widthOfString(text) <= width) return text;
    const ell = "…";
    if (doc.widthOfString(ell) > width) return "";
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (doc.widthOfString(text.slice(0, mid) + ell) <= width) lo = mid;
      else hi = mid - 1;
    }
    return text.slice(0, lo).trimEnd() + ell;
  }

  heading(text: string, y: number): number {
    this.line(text, this.left, y, this.width, { font: BOLD, size: 12 });
    this.doc.moveTo(this.left, y + 16).lineTo(this.right, y + 16).lineWidth(0.5).strokeColor(RULE).stroke();
    return y + 22;
  }

  overview(s: ReportSnapshot, title: string, digest: string) {
    let y = MARGIN;
    this.line(title, this.left, y, this.width, { font: BOLD, size: 18 });
    y += 26;
    this.line(`Generated at ${s.generated_at}`, this.left, y, this.width, { size: 10, color: MUTED });
    y += 14;
    this.line(`Snapshot digest (SHA-256 of the canonical JSON): ${digest}`, this.left, y, this.width, { size: 10, color: MUTED });
    y += 14;
    const filters = Object.keys(s.filters)
      .sort()
      .map((k) => `${k} = ${String(s.filters[k])}`);
    this.line(`Filters: ${filters.length ? filters.join(", ") : "none"}`, this.left, y, this.width, { size: 10, color: MUTED });
    y += 22;

    y = this.heading("Summary", y);
    const entries = summaryEntries(s.summary);
    const cols = 3;
    const colW = this.width / cols;
    const maxRows = 8;
    const shown = entries.slice(0, cols * maxRows);
    shown.forEach(([k, v], i) => {
      const x = this.left + (i % cols) * colW;
      const yy = y + Math.floor(i / cols) * 13;
      this.doc.font(BOLD).fontSize(9);
      const label = this.fit(pdfSafeText(`${k}:`), colW * 0.55);
      const lw = this.doc.widthOfString(label) + 4;
      this.line(label, x, yy, lw + 1, { font: BOLD });
      this.line(v, x + lw, yy, colW - lw - 8);
    });
    const rowsUsed = Math.max(1, Math.ceil(shown.length / cols));
    if (shown.length === 0) this.line("No summary figures.", this.left, y, this.width, { color: MUTED });
    y += rowsUsed * 13;
    if (entries.length > shown.length) {
      this.line(`… ${entries.length - shown.length} more figures in the JSON export.`, this.left, y, this.width, { size: 8, color: MUTED });
      y += 12;
    }
    this.doc.y = y + 10;
  }

  chart(c: ReportSnapshot["chart"]) {
    const { doc } = this;
    let y = doc.y;
    const needed = 200;
    if (this.bottom - y < needed) {
      doc.addPage();
      y = MARGIN;
    }
    y = this.heading(c.title || "Chart", y);
    const n = Math.min(c.labels.length, c.values.length);
    const rotate = n > 12;
    const labelBand = rotate ? 48 : 16;
    const top = y + 8;
    const base = this.bottom - labelBand - 8;
    const plotH = base - top;
    const axisX = this.left + 48;
    const plotW = this.right - axisX - 8;

    const values = c.values.slice(0, n).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
    const max = values.reduce((a, b) => Math.max(a, b), 0);
    const { step, top: scaleTop } = niceScale(max);

    // Gridlines and tick labels.
    const ticks = Math.round(scaleTop / step);
    for (let k = 0; k <= ticks; k++) {
      const t = Number((k * step).toPrecision(12));
      const yy = base - (t / scaleTop) * plotH;
      doc.moveTo(axisX, yy).lineTo(axisX + plotW, yy).lineWidth(0.4).strokeColor(GRID).stroke();
      this.line(formatNumber(t), this.left, yy - 4, 44, { size: 7, color: MUTED, align: "right" });
    }
    // Axes.
    doc.moveTo(axisX, top).lineTo(axisX, base).lineTo(axisX + plotW, base).lineWidth(0.8).strokeColor(INK).stroke();

    if (n === 0) {
      this.line("No data in this report's window.", axisX + 12, top + plotH / 2 - 5, plotW - 24, { size: 10, color: MUTED, align: "center" });
      doc.y = this.bottom;
      return;
    }
    const slot = plotW / n;
    const barW = Math.min(Math.max(1, slot * 0.7), 64);
    values.forEach((v, i) => {
      const x = axisX + i * slot + (slot - barW) / 2;
      const h = (v / scaleTop) * plotH;
      if (h > 0) doc.rect(x, base - h, barW, h).fillColor(BAR).fill();
      if (slot >= 18) this.line(formatNumber(c.values[i] ?? 0), x - 6, base - h - 10, barW + 12, { size: 6.5, color: INK, align: "center" });
      const label = pdfSafeText(c.labels[i] ?? "");
      if (rotate) {
        doc.save();
        doc.rotate(-45, { origin: [x + barW / 2, base + 6] });
        doc.font(FONT).fontSize(6.5).fillColor(INK);
        const fitted = this.fit(label, labelBand * 1.3);
        const w = doc.widthOfString(fitted);
        doc.text(fitted, x + barW / 2 - w, base + 2, { lineBreak: false });
        doc.restore();
      } else {
        this.line(label, axisX + i * slot + 1, base + 4, slot - 2, { size: 7, align: "center" });
      }
    });
    doc.y = this.bottom;
  }

  async table(t: ReportSnapshot["table"]) {
    const { doc } = this;
    const cols = t.columns.length;
    const pad = 4;
    const size = 7.5;
    const rowH = 12;
    const headH = 15;
    const numeric = t.columns.map(
      (_, j) => t.rows.some((r) => typeof r[j] === "number") && t.rows.every((r) => r[j] === null || r[j] === undefined || typeof r[j] === "number"),
    );

    // Natural widths from the header and up to 500 rows; then fitted to the page.
    const natural = t.columns.map((name, j) => {
      doc.font(BOLD).fontSize(size);
      let w = doc.widthOfString(pdfSafeText(name));
      doc.font(FONT).fontSize(size);
      for (const row of t.rows.slice(0, 500)) w = Math.max(w, doc.widthOfString(pdfSafeText(cellText(row[j] ?? null))));
      return w + 2 * pad;
    });
    // Table pages are as wide as the columns need (ids are never cut), from A4 landscape up to
    // MAX_PAGE_WIDTH; past that the widest columns share the space and long text is cut with "…".
    const tableW = natural.reduce((a, b) => a + b, 0);
    const pageW = Math.min(Math.max(A4_LANDSCAPE[0], Math.ceil(tableW) + 2 * MARGIN), MAX_PAGE_WIDTH);
    const tablePage = { size: [pageW, A4_LANDSCAPE[1]], layout: "portrait" as const, margin: MARGIN };
    doc.addPage(tablePage);
    let y = this.heading(`Rows (${t.rows.length})`, MARGIN);
    if (cols === 0 || t.rows.length === 0) {
      this.line("No rows.", this.left, y, this.width, { color: MUTED });
      return;
    }
    const widths = fitWidths(natural, this.width, 28);

    const header = () => {
      doc.rect(this.left, y, this.width, headH).fillColor(HEAD_FILL).fill();
      let x = this.left;
      t.columns.forEach((name, j) => {
        this.line(name, x + pad, y + 4, widths[j]! - 2 * pad, { font: BOLD, size, align: numeric[j] ? "right" : "left" });
        x += widths[j]!;
      });
      y += headH;
    };
    header();
    for (let i = 0; i < t.rows.length; i++) {
      const row = t.rows[i]!;
      // A long table is drawn in slices, so other requests are served in between.
      if (i > 0 && i % YIELD_EVERY_ROWS === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (y + rowH > this.bottom) {
        doc.addPage(tablePage);
        y = MARGIN;
        header();
      }
      if (i % 2 === 1) doc.rect(this.left, y, this.width, rowH).fillColor(STRIPE).fill();
      let x = this.left;
      for (let j = 0; j < cols; j++) {
        this.line(cellText(row[j] ?? null), x + pad, y + 3, widths[j]! - 2 * pad, { size, align: numeric[j] ? "right" : "left" });
        x += widths[j]!;
      }
      y += rowH;
    }
    doc.moveTo(this.left, y).lineTo(this.right, y).lineWidth(0.5).strokeColor(RULE).stroke();
  }

  footers(s: ReportSnapshot) {
    const { doc } = this;
    const range = doc.bufferedPageRange();
    for (let i = range.start; i < range.start + range.count; i++) {
      doc.switchToPage(i);
      // Writing inside the bottom margin would make pdfkit start a new page; lift the margin first.
      const saved = doc.page.margins.bottom;
      doc.page.margins.bottom = 0;
      const y = doc.page.height - MARGIN - 10;
      doc.moveTo(this.left, y - 4).lineTo(this.right, y - 4).lineWidth(0.4).strokeColor(GRID).stroke();
      this.line(`LicenseKit · ${s.report_kind} · generated ${s.generated_at}`, this.left, y, this.width * 0.7, { size: 7.5, color: MUTED });
      this.line(`Page ${i - range.start + 1} of ${range.count}`, this.left + this.width * 0.7, y, this.width * 0.3, { size: 7.5, color: MUTED, align: "right" });
      doc.page.margins.bottom = saved;
    }
  }
}

function cellText(c: ReportCell): string {
  if (c === null) return "";
  return typeof c === "number" ? formatNumber(c) : c;
}

function formatNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : "";
}

/** Flattened scalar figures of the summary: `totals.amount` → "42"; long lists are counted. */
export function summaryEntries(summary: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  const walk = (v: unknown, key: string, depth: number) => {
    if (v === null || v === undefined) out.push([key, "—"]);
    else if (typeof v === "number") out.push([key, formatNumber(v)]);
    else if (typeof v === "string" || typeof v === "boolean") out.push([key, String(v)]);
    else if (Array.isArray(v)) {
      if (v.every((x) => x === null || ["string", "number", "boolean"].includes(typeof x)) && v.length <= 8) out.push([key, v.map(String).join(", ") || "(none)"]);
      else out.push([key, `${v.length} items (see the table and the JSON export)`]);
    } else if (typeof v === "object") {
      const keys = Object.keys(v as object).sort();
      if (depth >= 2 || keys.length === 0) out.push([key, keys.length === 0 ? "(none)" : `${keys.length} fields (see the JSON export)`]);
      else for (const k of keys) walk((v as Record<string, unknown>)[k], key ? `${key}.${k}` : k, depth + 1);
    }
  };
  for (const k of Object.keys(summary).sort()) walk(summary[k], k, 1);
  return out;
}

/** Column widths: natural widths when they fit, else the widest columns share what is left. */
export function fitWidths(natural: number[], total: number, min: number): number[] {
  const sum = natural.reduce((a, b) => a + b, 0);
  if (sum <= total) {
    const extra = (total - sum) / natural.length;
    return natural.map((w) => w + extra);
  }
  // Water-filling: narrow columns keep their width, the rest get equal shares of what remains.
  const order = natural.map((w, j) => [w, j] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(natural.length).fill(0);
  let left = total;
  order.forEach(([w, j], k) => {
    const share = left / (natural.length - k);
    const width = Math.max(Math.min(w, share), Math.min(min, share));
    out[j] = width;
    left -= width;
  });
  return out;
}

/** Axis top and tick step (1, 2 or 5 × 10^k) for values up to `max`, about five ticks. */
export function niceScale(max: number): { step: number; top: number } {
  if (!(max > 0)) return { step: 1, top: 1 };
  const rough = max / 5;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= rough) ?? 10 * mag;
  return { step, top: Math.ceil(max / step) * step };
}
