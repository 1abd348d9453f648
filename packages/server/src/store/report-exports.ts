// Frozen report exports (NOTES §20). A row is inserted once with its snapshot (canonical JSON) and
// `digest`, status `pending`; rendering then sets it `ready` with the artifact (base64) and
// `artifact_digest`, or `failed` with an error text. Nothing changes a row after that.
import { newId } from "../ids.js";
import type { ReportFilters, ReportKind } from "../reporting/types.js";
import type { Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { ReportExportsTable } from "./schema.js";

export type ReportExportRow = ReportExportsTable;
export type ExportFormat = ReportExportsTable["format"];
export type ExportStatus = ReportExportsTable["status"];

export interface ReportExportView {
  id: string;
  report_kind: ReportKind;
  format: ExportFormat;
  status: ExportStatus;
  filters: ReportFilters;
  digest: string;
  artifact_digest: string | null;
  content_type: string;
  created_by: string;
  created_at: string;
  updated_at: string;
  download_url: string;
}

export function reportExportView(r: ReportExportMeta): ReportExportView {
  return {
    id: r.id,
    report_kind: r.report_kind as ReportKind,
    format: r.format,
    status: r.status,
    filters: parseJsonObject(r.filters) as ReportFilters,
    digest: r.digest ?? "",
    artifact_digest: r.artifact_digest,
    content_type: r.content_type,
    created_by: r.created_by,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    download_url: `/api/v1/reports/exports/${r.id}/download`,
  };
}

export interface NewReportExport {
  kind: ReportKind;
  format: ExportFormat;
  filters: ReportFilters;
  snapshot: string;
  digest: string;
  contentType: string;
  createdBy: string;
}

export async function insertReportExport(q: Q, e: NewReportExport, now: number): Promise<ReportExportRow> {
  const row: ReportExportRow = {
    id: newId("rptx", now),
    report_kind: e.kind,
    format: e.format,
    status: "pending",
    filters: JSON.stringify(e.filters),
    snapshot: e.snapshot,
    digest: e.digest,
    artifact: null,
    artifact_digest: null,
    content_type: e.contentType,
    error: null,
    created_by: e.createdBy,
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("report_exports").values(row).execute();
  return row;
}

export type RenderOutcome = { status: "ready"; artifact: Buffer; artifactDigest: string } | { status: "failed"; error: string };

/** Settles a pending export (only a pending one: a settled row never changes). */
export async function settleReportExport(q: Q, row: ReportExportRow, outcome: RenderOutcome, now: number): Promise<ReportExportRow> {
  const next: ReportExportRow =
    outcome.status === "ready"
      ? { ...row, status: "ready", artifact: outcome.artifact.toString("base64"), artifact_digest: outcome.artifactDigest, error: null, updated_at: now }
      : { ...row, status: "failed", artifact: null, artifact_digest: null, error: outcome.error, updated_at: now };
  const res = await q
    .updateTable("report_exports")
    .set({ status: next.status, artifact: next.artifact, artifact_digest: next.artifact_digest, error: next.error, updated_at: now })
    .where("id", "=", row.id)
    .where("status", "=", "pending")
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new Error(`report export ${row.id} was not pending`);
  return next;
}

/** The metadata columns only (no snapshot, no artifact). */
const META_COLUMNS = [
  "id",
  "report_kind",
  "format",
  "status",
  "filters",
  "digest",
  "artifact_digest",
  "content_type",
  "error",
  "created_by",
  "created_at",
  "updated_at",
] as const;

export type ReportExportMeta = Omit<ReportExportRow, "snapshot" | "artifact">;

export function findReportExportMeta(q: Q, id: string): Promise<ReportExportMeta | undefined> {
  return q.selectFrom("report_exports").select(META_COLUMNS).where("id", "=", id).executeTakeFirst();
}

/** The whole row, artifact included (for downloads). */
export function findReportExport(q: Q, id: string): Promise<ReportExportRow | undefined> {
  return q.selectFrom("report_exports").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function listReportExports(q: Q, limit: number, before: string | null) {
  let qb = q.selectFrom("report_exports").select(META_COLUMNS).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}
