// /api/v1/reports/exports: frozen report exports (NOTES §20), scope report:export. Creating one takes
// the report's snapshot once (one consistent read), stores it with its digest (status pending, the
// `report_export.created` event in the same transaction), renders the artifact once from the stored
// snapshot, and stores that too (status ready, or failed with the reason). Downloads serve the stored
// bytes; later changes to the live data never change an export.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { holdKeyFirst } from "../../http/idempotency.js";
import { commitAndRespond, managementOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdempotencyHeader, IdParams, ListQuery, listEnvelope, StringEnum } from "../../http/schemas.js";
import { canonicalJson, sha256Hex } from "../../reporting/canonical-json.js";
import { EXPORT_CONTENT_TYPES, EXPORT_FORMATS, ExportRenderRefused, exportFilename, renderExportArtifact } from "../../reporting/export-artifact.js";
import { parseReportFilters, takeSnapshot } from "../../reporting/reports.js";
import { REPORT_KINDS, type ReportFilters, type ReportKind, type ReportSnapshot } from "../../reporting/types.js";
import { recordEvent } from "../../store/audit-events.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import {
  findReportExport,
  findReportExportMeta,
  insertReportExport,
  listReportExports,
  type RenderOutcome,
  reportExportView,
  settleReportExport,
} from "../../store/report-exports.js";
import { MANAGEMENT_ERRORS, READ_ERRORS } from "./common.js";

// Lengths and values are the report's own rules (parseReportFilters → 422 naming the filter).
const FilterValue = Type.Union([Type.String(), Type.Number()]);

export const ReportExport = Type.Object({
  id: Type.String({ description: "rptx_ + 26 characters." }),
  report_kind: StringEnum(REPORT_KINDS),
  format: StringEnum(EXPORT_FORMATS),
  status: StringEnum(["pending", "ready", "failed"] as const, {
    description: "pending while the artifact is rendered; ready when it can be downloaded; failed when rendering failed (a download answers 409 with the reason).",
  }),
  filters: Type.Record(Type.String(), FilterValue, { description: "The validated filters the snapshot was taken with." }),
  digest: Type.String({ description: "Hex SHA-256 of the snapshot's canonical JSON (keys sorted, no whitespace)." }),
  artifact_digest: Type.Union([Type.String(), Type.Null()], {
    description: "Hex SHA-256 of the downloadable bytes; null unless status is ready. For json it equals digest.",
  }),
  content_type: Type.String({ description: "application/json, text/csv; charset=utf-8 or application/pdf." }),
  created_by: Type.String({ description: "The id of the API key that created the export." }),
  created_at: DateTime,
  updated_at: DateTime,
  download_url: Type.String({ description: "/api/v1/reports/exports/{id}/download" }),
});

const ReportExportCreateRequest = Type.Object(
  {
    report_kind: StringEnum(REPORT_KINDS),
    format: Type.Optional(StringEnum(EXPORT_FORMATS, { description: "Default json." })),
    filters: Type.Optional(
      Type.Record(Type.String(), FilterValue, {
        maxProperties: 20,
        description:
          "The report's parameters as its live read takes them (docs/reporting.md), e.g. from, to, product_id, license_id; `cursor` is not accepted, nor `limit` for usage-ledger (an export holds every matching row). A bad or unknown filter is 422 VALIDATION_ERROR naming `filters.<name>`.",
      }),
    ),
  },
  { additionalProperties: false },
);

/** Parameters that page a live read; an export holds the whole report, so they make no sense there. */
function pagingFilterProblem(kind: ReportKind, raw: Record<string, unknown>): string | undefined {
  if (raw.cursor !== undefined) return "field filters.cursor: an export holds every matching row; cursor does not apply";
  if (kind === "usage-ledger" && raw.limit !== undefined) return "field filters.limit: a usage-ledger export holds every matching row; limit does not apply";
  return undefined;
}

/**
 * The reporting reads name a bad parameter as `query parameter <name>: …` (400 INVALID_QUERY, or 404
 * for an unknown id). In an export they arrived in the body, so they become 422 VALIDATION_ERROR
 * naming `filters.<name>`.
 */
function asFilterError(err: unknown): unknown {
  if (!(err instanceof ApiError) || (err.code !== "INVALID_QUERY" && err.code !== "NOT_FOUND")) return err;
  const detail = err.detail ?? "";
  const m = /^query parameter ([^:]+): (.*)$/s.exec(detail);
  return new ApiError("VALIDATION_ERROR", m ? `field filters.${m[1]}: ${m[2]}` : `field filters: ${detail}`);
}

function withFilterErrors<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw asFilterError(err);
  }
}

export const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const lk = app.lk;

  /** One consistent read: a repeatable-read transaction on PostgreSQL, the write-locked one on SQLite. */
  async function snapshotOf(kind: ReportKind, filters: ReportFilters): Promise<ReportSnapshot> {
    let tx = lk.store.db.transaction();
    if (lk.store.engine === "postgres") tx = tx.setIsolationLevel("repeatable read").setAccessMode("read only");
    try {
      return await tx.execute((trx) => takeSnapshot(trx, kind, filters, lk.clock.now()));
    } catch (err) {
      throw asFilterError(err);
    }
  }

  async function render(req: FastifyRequest, format: (typeof EXPORT_FORMATS)[number], snapshotJson: string, digest: string): Promise<RenderOutcome> {
    try {
      const artifact = await renderExportArtifact(format, snapshotJson, digest, { pdfMaxRows: lk.config.exportPdfMaxRows });
      return { status: "ready", artifact, artifactDigest: sha256Hex(artifact) };
    } catch (err) {
      if (err instanceof ExportRenderRefused) return { status: "failed", error: err.message };
      req.log.error({ err }, "report export rendering failed");
      return { status: "failed", error: `rendering the ${format} artifact failed (request ${req.id}); the server log has the cause` };
    }
  }

  app.post(
    "/reports/exports",
    {
      config: { scope: "report:export", idempotency: "optional" },
      schema: {
        operationId: "createReportExport",
        tags: ["reports"],
        description:
          "Freezes a report: takes its snapshot now, stores it with its digest and renders the artifact once. The answer shows the final status (ready, or failed with the reason given by a download).",
        headers: IdempotencyHeader(false),
        body: ReportExportCreateRequest,
        response: {
          201: dataEnvelope(ReportExport),
          ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_JSON", "VALIDATION_ERROR", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) => {
      const kind = req.body.report_kind;
      const format = req.body.format ?? "json";
      const raw = req.body.filters ?? {};
      const problem = pagingFilterProblem(kind, raw);
      if (problem) throw new ApiError("VALIDATION_ERROR", problem);
      const filters = withFilterErrors(() => parseReportFilters(kind, raw));
      // The pending row commits before the answer's transaction: the key is taken before it.
      if (await holdKeyFirst(req, reply)) return reply;

      const snapshot = await snapshotOf(kind, filters);
      const snapshotJson = canonicalJson(snapshot);
      const digest = sha256Hex(snapshotJson);

      const row = await lk.store.db.transaction().execute(async (trx) => {
        const inserted = await insertReportExport(
          trx,
          { kind, format, filters, snapshot: snapshotJson, digest, contentType: EXPORT_CONTENT_TYPES[format], createdBy: req.principal?.id ?? "unknown" },
          lk.clock.now(),
        );
        await recordEvent(trx, managementEvent(req, "report_export.created", "report_export", inserted.id, { report_kind: kind, format, filters, digest }));
        return inserted;
      });

      const outcome = await render(req, format, snapshotJson, digest);
      return commitAndRespond(req, reply, async (trx) => {
        const settled = await settleReportExport(trx, row, outcome, lk.clock.now());
        return managementOutcome(req, reply, 201, reportExportView(settled));
      });
    },
  );

  app.get(
    "/reports/exports",
    {
      config: { scope: "report:export" },
      schema: {
        operationId: "listReportExports",
        tags: ["reports"],
        description: "Exports newest first (metadata only).",
        querystring: ListQuery,
        response: { 200: listEnvelope(ReportExport), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const page = await listReportExports(lk.store.db, clampLimit(req.query.limit), decodeCursor(req.query.cursor));
      return { data: page.rows.map(reportExportView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.get(
    "/reports/exports/:id",
    {
      config: { scope: "report:export" },
      schema: {
        operationId: "getReportExport",
        tags: ["reports"],
        params: IdParams,
        response: { 200: dataEnvelope(ReportExport), ...errorResponses(...READ_ERRORS) },
      },
    },
    async (req) => {
      const row = await findReportExportMeta(lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `report export ${req.params.id} not found`);
      return { data: reportExportView(row), meta: responseMeta(req) };
    },
  );

  app.get(
    "/reports/exports/:id/download",
    {
      config: { scope: "report:export" },
      schema: {
        operationId: "downloadReportExport",
        tags: ["reports"],
        description:
          "The stored artifact, byte for byte: Content-Type as the export's content_type, Content-Disposition attachment with a file name, ETag and X-LicenseKit-Artifact-Digest from artifact_digest. 409 CONFLICT unless the export is ready.",
        params: IdParams,
        response: {
          200: {
            description: "The artifact bytes.",
            content: {
              "application/json": { schema: { type: "object", additionalProperties: true, description: "The frozen snapshot as canonical JSON." } },
              "text/csv": { schema: { type: "string", description: "RFC 4180 CSV, UTF-8 without BOM, CRLF line ends." } },
              "application/pdf": { schema: { type: "string", format: "binary" } },
            },
          },
          ...errorResponses(...READ_ERRORS, "CONFLICT"),
        },
      },
    },
    async (req, reply) => {
      const row = await findReportExport(lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `report export ${req.params.id} not found`);
      if (row.status !== "ready" || row.artifact === null || row.artifact_digest === null) {
        const why = row.status === "failed" && row.error ? `: ${row.error}` : "";
        throw new ApiError("CONFLICT", `report export ${row.id} is ${row.status}${why}; only a ready export can be downloaded`);
      }
      const bytes = Buffer.from(row.artifact, "base64");
      const filename = exportFilename(row.id, row.report_kind, row.format);
      return reply
        .code(200)
        .header("content-type", row.content_type)
        .header("content-disposition", `attachment; filename="${filename}"`)
        .header("etag", `"${row.artifact_digest}"`)
        .header("x-licensekit-artifact-digest", row.artifact_digest)
        .header("x-content-type-options", "nosniff")
        .send(bytes);
    },
  );
};
