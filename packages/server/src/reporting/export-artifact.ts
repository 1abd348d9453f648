// The artifact of a frozen export, rendered from the stored canonical snapshot text alone (never from
// live data), so what a download serves depends only on what was frozen at creation.
//  - json: the canonical snapshot itself, byte for byte (so its artifact_digest equals digest);
//  - csv:  the snapshot's table (render-csv.ts);
//  - pdf:  title, filters, summary, chart and table (render-pdf.ts), at most `pdfMaxRows` rows.
import { CSV_CONTENT_TYPE, renderCsv } from "./render-csv.js";
import { PDF_CONTENT_TYPE, renderPdf } from "./render-pdf.js";
import type { ReportSnapshot } from "./types.js";

export const EXPORT_FORMATS = ["json", "csv", "pdf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  json: "application/json",
  csv: CSV_CONTENT_TYPE,
  pdf: PDF_CONTENT_TYPE,
};

/** A rendering refused for a reason the client can act on; its message is stored as the export's error. */
export class ExportRenderRefused extends Error {
  override readonly name = "ExportRenderRefused";
}

export interface RenderOptions {
  /** Most table rows a PDF holds (LICENSEKIT_EXPORT_PDF_MAX_ROWS). */
  pdfMaxRows: number;
}

export async function renderExportArtifact(format: ExportFormat, snapshotJson: string, digest: string, opts: RenderOptions): Promise<Buffer> {
  if (format === "json") return Buffer.from(snapshotJson, "utf8");
  const snapshot = JSON.parse(snapshotJson) as ReportSnapshot;
  if (format === "csv") return renderCsv(snapshot);
  const rows = snapshot.table.rows.length;
  if (rows > opts.pdfMaxRows) {
    throw new ExportRenderRefused(
      `the report has ${rows} rows and a PDF export holds at most ${opts.pdfMaxRows} (LICENSEKIT_EXPORT_PDF_MAX_ROWS); narrow the filters or export csv or json`,
    );
  }
  return renderPdf(snapshot, { digest });
}

/** `licensekit-usage-ledger-rptx_….csv`: ASCII only, safe in a Content-Disposition header. */
export function exportFilename(id: string, kind: string, format: ExportFormat): string {
  return `licensekit-${kind}-${id}.${format}`.replace(/[^A-Za-z0-9._-]/g, "_");
}
