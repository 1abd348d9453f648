// Frozen report exports (NOTES §20, issue 7 item 4): POST /api/v1/reports/exports takes a snapshot
// once; downloads serve the stored bytes even after the live data changed; digest = SHA-256 of the
// canonical snapshot, artifact_digest = SHA-256 of the bytes. CSV is RFC 4180 with formula cells
// defused (checked with a small RFC 4180 parser); PDF is checked with poppler (pdftotext, pdftoppm).
// Renderers and canonical JSON are also checked on hand-built snapshots.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { canonicalDigest, canonicalJson } from "../src/reporting/canonical-json.js";
import { renderExportArtifact } from "../src/reporting/export-artifact.js";
import { renderCsv } from "../src/reporting/render-csv.js";
import { fitWidths, niceScale, pdfSafeText, renderPdf } from "../src/reporting/render-pdf.js";
import type { ReportSnapshot } from "../src/reporting/types.js";
import { ENGINES } from "./helpers/engines.js";
import { ADMIN_TOKEN, type Harness, issueLicense, type Reply, startHarness } from "./helpers/harness.js";

const EXPORTS = "/api/v1/reports/exports";
/** Export metadata as answered (a parsed body, inspected field by field). */
type ExportMeta = Reply["json"];
const PNG_OUT = "/work/tmp/export-page1.png";
const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lk-exports-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** RFC 4180 parser, written independently of the renderer: records of fields; CRLF line ends. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  let wasQuoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i += 1;
      } else {
        field += c;
        i += 1;
      }
      continue;
    }
    if (c === '"') {
      assert.equal(field, "", `a quote inside an unquoted field at ${i}`);
      quoted = true;
      wasQuoted = true;
      i += 1;
    } else if (c === ",") {
      record.push(field);
      field = "";
      wasQuoted = false;
      i += 1;
    } else if (c === "\r") {
      assert.equal(text[i + 1], "\n", `a bare CR at ${i}`);
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      wasQuoted = false;
      i += 2;
    } else {
      assert.notEqual(c, "\n", `a bare LF at ${i}`);
      field += c;
      i += 1;
    }
  }
  assert.equal(quoted, false, "an unterminated quoted field");
  assert.ok(field === "" && record.length === 0 && !wasQuoted, "the last record ends with CRLF");
  return records;
}

/** What a CSV text field reads back as: one leading `'` dropped when it defused a formula start. */
const undefuse = (f: string) => (/^'[=+\-@\t\r]/.test(f) ? f.slice(1) : f);

/** Sorted-key JSON written independently of src/reporting/canonical-json.ts. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

function pdfText(pdf: Buffer, name: string): string {
  const file = path.join(tmp, `${name}.pdf`);
  fs.writeFileSync(file, pdf);
  return execFileSync("pdftotext", ["-layout", file, "-"], { encoding: "utf8" });
}

/** Renders page 1 at 60 dpi with pdftoppm; returns the PNG bytes. */
function pdfPage1Png(pdf: Buffer, name: string): Buffer {
  const file = path.join(tmp, `${name}.pdf`);
  fs.writeFileSync(file, pdf);
  const prefix = path.join(tmp, `${name}-page`);
  execFileSync("pdftoppm", ["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", file, prefix]);
  return fs.readFileSync(`${prefix}.png`);
}

const SAMPLE: ReportSnapshot = {
  report_kind: "usage-ledger",
  generated_at: "2026-03-01T12:00:00Z",
  filters: { from: "2026-03-01T00:00:00Z", product_id: "prod_01JQ0000000000000000000000" },
  summary: { consumed_amount: 42, row_count: 6, truncated: false, window: { from: "2026-03-01T00:00:00Z", to: null } },
  table: {
    columns: ["occurred_at", "event_id", "license_id", "feature_code", "amount", "note"],
    rows: [
      ["2026-03-01T10:00:00Z", "=HYPERLINK(\"http://evil.example\",\"x\")", "lic_01JQAAAAAAAAAAAAAAAAAAAAAA", "api-calls", 5, null],
      ["2026-03-01T10:01:00Z", "+1", "lic_01JQAAAAAAAAAAAAAAAAAAAAAA", "api-calls", -3, "-5"],
      ["2026-03-01T10:02:00Z", "@SUM(A1)", "lic_01JQBBBBBBBBBBBBBBBBBBBBBB", "exports", 0.5, "\ttabbed"],
      ["2026-03-01T10:03:00Z", 'has "quotes", commas\r\nand lines', "lic_01JQBBBBBBBBBBBBBBBBBBBBBB", "exports", 1e21, "\rcarriage"],
      ["2026-03-01T10:04:00Z", "Grüße – € ✓ 日本", "lic_01JQCCCCCCCCCCCCCCCCCCCCCC", "exports", 12, "x".repeat(1000)],
      ["2026-03-01T10:05:00Z", "plain", "lic_01JQCCCCCCCCCCCCCCCCCCCCCC", "exports", 27, "it's fine"],
    ],
  },
  chart: { title: "Consumed amount per feature", labels: ["api-calls", "exports"], values: [2, 40.5] },
};

describe("canonical JSON and digests", () => {
  it("sorts keys recursively, writes no whitespace, keeps numbers as JSON writes them", () => {
    const v = { b: [3, { z: 1, a: -0, m: [true, null, "é"] }], a: 1.5e-7, "é": "x", A: 1e21, c: undefined };
    assert.equal(canonicalJson(v), '{"A":1e+21,"a":1.5e-7,"b":[3,{"a":0,"m":[true,null,"é"],"z":1}],"é":"x"}');
    assert.equal(canonicalJson(v), sortedJson(JSON.parse(JSON.stringify(v))));
    assert.equal(canonicalDigest(v), sha256(Buffer.from(canonicalJson(v), "utf8")));
    assert.equal(canonicalJson(JSON.parse(canonicalJson(SAMPLE))), canonicalJson(SAMPLE), "re-canonicalising the stored text is the identity");
  });
  it("refuses what JSON cannot hold instead of writing something else", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1n, [undefined], () => 1, new Date(0)]) {
      assert.throws(() => canonicalJson({ x: bad }), TypeError);
    }
  });
});

describe("CSV rendering", () => {
  const csv = renderCsv(SAMPLE);
  const text = csv.toString("utf8");
  it("is UTF-8 without BOM, CRLF records, header = table.columns", () => {
    assert.notEqual(csv[0], 0xef, "no byte-order mark");
    const records = parseCsv(text);
    assert.deepEqual(records[0], SAMPLE.table.columns);
    assert.equal(records.length, SAMPLE.table.rows.length + 1);
    assert.ok(text.endsWith("\r\n"));
  });
  it("defuses text cells that start a formula; numbers stay numbers (a negative amount too)", () => {
    const rows = parseCsv(text).slice(1);
    assert.equal(rows[0]![1], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert.equal(rows[1]![1], "'+1");
    assert.equal(rows[1]![4], "-3", "a number cell is written bare");
    assert.equal(rows[1]![5], "'-5", "the text -5 is defused");
    assert.equal(rows[2]![1], "'@SUM(A1)");
    assert.equal(rows[2]![5], "'\ttabbed");
    assert.equal(rows[3]![5], "'\rcarriage");
    assert.equal(rows[2]![4], "0.5");
    assert.equal(rows[3]![4], "1e+21");
    assert.equal(rows[0]![5], "", "null is an empty field");
    assert.ok(text.includes('"\'=HYPERLINK(""http://evil.example"",""x"")"'), "quotes doubled inside a quoted field");
  });
  it("quotes, commas, CR/LF and non-ASCII round-trip through an RFC 4180 parser", () => {
    const rows = parseCsv(text).slice(1);
    SAMPLE.table.rows.forEach((row, i) => {
      row.forEach((cell, j) => {
        const field = rows[i]![j]!;
        const back = cell === null ? "" : typeof cell === "number" ? String(Number(field)) : undefuse(field);
        assert.equal(back, cell === null ? "" : String(cell), `row ${i} column ${j}`);
      });
    });
  });
});

describe("PDF rendering", () => {
  it("is deterministic, carries the title, rows and page numbers, and renders with poppler", async () => {
    const digest = canonicalDigest(SAMPLE);
    const a = await renderPdf(SAMPLE, { digest });
    const b = await renderPdf(JSON.parse(canonicalJson(SAMPLE)) as ReportSnapshot, { digest });
    assert.ok(a.equals(b), "the same snapshot renders to the same bytes");
    assert.equal(a.subarray(0, 5).toString("latin1"), "%PDF-");
    const text = pdfText(a, "sample");
    assert.match(text, /LicenseKit — Usage ledger \(usage-ledger\)/);
    assert.match(text, /Generated at 2026-03-01T12:00:00Z/);
    assert.ok(text.includes(digest), "the snapshot digest is printed");
    assert.match(text, /product_id = prod_01JQ0000000000000000000000/);
    for (const id of ["lic_01JQAAAAAAAAAAAAAAAAAAAAAA", "lic_01JQBBBBBBBBBBBBBBBBBBBBBB", "lic_01JQCCCCCCCCCCCCCCCCCCCCCC"]) assert.ok(text.includes(id), id);
    assert.match(text, /Page 1 of 2/);
    assert.match(text, /Page 2 of 2/);
    assert.match(text, /Grüße – € \? \?\?/, "WinAnsi characters kept, others shown as ?");
    assert.match(text, /x+…/, "a long cell is cut with an ellipsis");
    assert.ok(pdfPage1Png(a, "sample").subarray(1, 4).toString("latin1") === "PNG");
  });
  it("draws an empty report and a long chart without failing", async () => {
    const empty: ReportSnapshot = { ...SAMPLE, table: { columns: ["a"], rows: [] }, chart: { title: "Nothing", labels: [], values: [] }, summary: {} };
    const text = pdfText(await renderPdf(empty, { digest: canonicalDigest(empty) }), "empty");
    assert.match(text, /No rows\./);
    assert.match(text, /No data/);
    const labels = Array.from({ length: 36 }, (_, i) => `feature-${i}`);
    const long: ReportSnapshot = { ...SAMPLE, chart: { title: "Many", labels, values: labels.map((_, i) => i * 7) } };
    pdfPage1Png(await renderPdf(long, { digest: canonicalDigest(long) }), "long");
  });
  it("helpers: safe text, column fitting, axis scale", () => {
    assert.equal(pdfSafeText("a\tb€✓"), "a b€?");
    assert.deepEqual(fitWidths([10, 20], 60, 5), [25, 35]);
    const fitted = fitWidths([10, 500, 400], 300, 28);
    assert.equal(fitted[0], 28, "a narrow column still gets the minimum width");
    assert.ok(Math.abs(fitted.reduce((a, b) => a + b, 0) - 300) < 1e-9);
    assert.deepEqual(niceScale(0), { step: 1, top: 1 });
    assert.deepEqual(niceScale(96), { step: 20, top: 100 });
    assert.deepEqual(niceScale(0.3), { step: 0.1, top: 0.30000000000000004 });
  });
  it("a PDF over the row limit is refused with a reason; JSON and CSV have no limit", async () => {
    const json = canonicalJson(SAMPLE);
    await assert.rejects(renderExportArtifact("pdf", json, "d", { pdfMaxRows: 5 }), /6 rows and a PDF export holds at most 5/);
    assert.equal((await renderExportArtifact("json", json, "d", { pdfMaxRows: 5 })).toString("utf8"), json);
    assert.ok((await renderExportArtifact("csv", json, "d", { pdfMaxRows: 5 })).equals(renderCsv(SAMPLE)));
  });
});

// Keys of the metadata, exactly as NOTES §20 lists them.
const METADATA_KEYS = [
  "artifact_digest",
  "content_type",
  "created_at",
  "created_by",
  "digest",
  "download_url",
  "filters",
  "format",
  "id",
  "report_kind",
  "status",
  "updated_at",
];

for (const engine of ENGINES) {
  describe(`report exports [${engine}]`, () => {
    let h: Harness;
    let adminKeyId: string;
    let lic: Awaited<ReturnType<typeof issueLicense>>;
    let other: Awaited<ReturnType<typeof issueLicense>>;
    let n = 0;
    const PDF_MAX_ROWS = 12;

    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_EXPORT_PDF_MAX_ROWS: String(PDF_MAX_ROWS) } });
      adminKeyId = (await h.lk.store.db.selectFrom("api_keys").select("id").executeTakeFirstOrThrow()).id;
      lic = await issueLicense(h, { max_activations: 3 });
      other = await issueLicense(h, { max_activations: 3 });
      for (const l of [lic, other]) {
        for (const code of ["api-calls", "exports"]) {
          const f = await h.request({ url: `/api/v1/products/${l.productId}/features`, body: { name: code, code } });
          assert.equal(f.status, 201, f.text);
          const a = await h.request({ url: `/api/v1/licenses/${l.licenseId}/features`, body: { feature_id: f.json.data.id, max_consumptions: 100000 } });
          assert.equal(a.status, 200, a.text);
        }
        const act = await h.request({ url: "/api/v1/license/activate", licenseKey: l.key, idempotencyKey: `act-${++n}`, body: { fingerprint: "host-1" } });
        assert.equal(act.status, 200, act.text);
      }
      // Client-chosen event ids are free text: the CSV must defuse the formula-looking ones.
      await consume(lic.key, "api-calls", 5, '=HYPERLINK("http://evil.example","click")');
      await consume(lic.key, "api-calls", 7, "+cmd|' /C calc'!A0");
      await consume(lic.key, "exports", 2, "-2+3");
      await consume(lic.key, "exports", 3, "@SUM(1+1)");
      await consume(lic.key, "api-calls", 11, 'batch "7", part 1\nsecond line');
      await consume(other.key, "api-calls", 13, "\tjob-tab");
      await consume(other.key, "exports", 17, "job-17");
    });
    after(async () => h?.close());

    async function consume(key: string, feature: string, amount: number, eventId: string) {
      h.clock.advance(37 * 60_000); // rows spread over several hours, for the hourly buckets
      const r = await h.request({
        url: "/api/v1/license/consume",
        licenseKey: key,
        idempotencyKey: `consume-${++n}`,
        body: { fingerprint: "host-1", feature_code: feature, amount, event_id: eventId },
      });
      assert.equal(r.status, 200, r.text);
    }

    const create = (body: unknown, opts: { token?: string; idempotencyKey?: string } = {}) =>
      h.request({ url: EXPORTS, body, ...(opts.token ? { token: opts.token } : {}), ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}) });

    async function created(body: unknown): Promise<ExportMeta> {
      const r = await create(body);
      assert.equal(r.status, 201, r.text);
      return r.json.data;
    }

    /** The raw bytes and headers of a download (also recorded by h.request for status coverage). */
    async function download(id: string): Promise<{ status: number; bytes: Buffer; headers: Reply["headers"] }> {
      const recorded = await h.request({ url: `${EXPORTS}/${id}/download` });
      const res = await h.app.inject({ method: "GET", url: `${EXPORTS}/${id}/download`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.statusCode, recorded.status);
      return { status: res.statusCode, bytes: res.rawPayload, headers: res.headers };
    }

    const row = (id: string) => h.lk.store.db.selectFrom("report_exports").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const eventsFor = (id: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("resource_id", "=", id).where("event_type", "=", "report_export.created").execute();

    it("ledger and summary exports in json, csv and pdf stay byte-identical after more consumption; a new export shows the new data", async () => {
      const specs = [
        { report_kind: "usage-ledger", format: "json", filters: { from: "2026-03-01T00:00:00Z" } },
        { report_kind: "usage-ledger", format: "csv" },
        { report_kind: "usage-ledger", format: "pdf", filters: { product_id: lic.productId } },
        { report_kind: "usage-summary", filters: { group_by: "feature_code" } },
        { report_kind: "usage-summary", format: "csv", filters: { group_by: "license_id", to: "2030-01-01T00:00:00Z" } },
        { report_kind: "usage-summary", format: "pdf", filters: { group_by: "feature_code", bucket: "1d" } },
      ] as const;
      const first: { meta: ExportMeta; bytes: Buffer; headers: Reply["headers"] }[] = [];
      for (const spec of specs) {
        const meta = await created(spec);
        assert.deepEqual(Object.keys(meta).sort(), METADATA_KEYS);
        const format = "format" in spec ? spec.format : "json";
        assert.match(meta.id, /^rptx_[0-9A-Z]{26}$/);
        assert.equal(meta.report_kind, spec.report_kind);
        assert.equal(meta.format, format);
        assert.equal(meta.status, "ready");
        assert.deepEqual(meta.filters, "filters" in spec ? spec.filters : {});
        assert.equal(meta.created_by, adminKeyId);
        assert.equal(meta.download_url, `/api/v1/reports/exports/${meta.id}/download`);
        assert.equal(meta.content_type, { json: "application/json", csv: "text/csv; charset=utf-8", pdf: "application/pdf" }[format]);
        assert.equal(meta.created_at, meta.updated_at);
        // digest = SHA-256 of the canonical snapshot, which is stored; the snapshot is what was frozen.
        const stored = await row(meta.id);
        assert.equal(sortedJson(JSON.parse(stored.snapshot!)), stored.snapshot, "the stored snapshot is canonical JSON");
        assert.equal(meta.digest, sha256(stored.snapshot!));
        assert.equal((await eventsFor(meta.id)).length, 1, "one report_export.created event");

        const d = await download(meta.id);
        assert.equal(d.status, 200);
        assert.equal(sha256(d.bytes), meta.artifact_digest, "artifact_digest = SHA-256 of the bytes served");
        assert.equal(d.headers.etag, `"${meta.artifact_digest}"`);
        assert.equal(d.headers["x-licensekit-artifact-digest"], meta.artifact_digest);
        assert.equal(d.headers["content-type"], meta.content_type);
        assert.equal(d.headers["content-disposition"], `attachment; filename="licensekit-${spec.report_kind}-${meta.id}.${format}"`);
        if (format === "json") {
          assert.equal(d.bytes.toString("utf8"), stored.snapshot, "the JSON download is the frozen snapshot itself");
          assert.equal(meta.artifact_digest, meta.digest);
        }
        first.push({ meta, bytes: d.bytes, headers: d.headers });
      }

      const ledgerBefore = JSON.parse(first[0]!.bytes.toString("utf8")) as ReportSnapshot;
      assert.equal(ledgerBefore.table.rows.length, 7);
      assert.equal(ledgerBefore.summary.consumed_amount, 58);

      // Live data moves on: more consumption through the real runtime route, later in time.
      await consume(lic.key, "api-calls", 100, "later-1");
      await consume(other.key, "exports", 200, "later-2");
      await consume(lic.key, "exports", 300, "later-3");

      for (const f of first) {
        const d = await download(f.meta.id);
        assert.equal(d.status, 200);
        assert.ok(d.bytes.equals(f.bytes), `${f.meta.report_kind} ${f.meta.format}: the same bytes after the data changed`);
        assert.equal(d.headers.etag, f.headers.etag);
        const again = await h.request({ url: `${EXPORTS}/${f.meta.id}` });
        assert.equal(again.status, 200);
        assert.deepEqual(again.json.data, f.meta, "metadata unchanged");
      }

      const newer = await created(specs[0]);
      assert.notEqual(newer.digest, first[0]!.meta.digest);
      const ledgerAfter = JSON.parse((await download(newer.id)).bytes.toString("utf8")) as ReportSnapshot;
      assert.equal(ledgerAfter.table.rows.length, 10);
      assert.equal(ledgerAfter.summary.consumed_amount, 658);
      const newerSummary = await created(specs[3]);
      const summaryAfter = JSON.parse((await download(newerSummary.id)).bytes.toString("utf8")) as ReportSnapshot;
      const summaryBefore = JSON.parse(first[3]!.bytes.toString("utf8")) as ReportSnapshot;
      const total = (s: ReportSnapshot) => (s.summary.totals as { consumed_amount: number }).consumed_amount;
      assert.equal(total(summaryBefore), 58);
      assert.equal(total(summaryAfter), 658);

      // A PDF export of the grown ledger is over this server's PDF row limit: stored as failed.
      await consume(other.key, "api-calls", 1, "later-4");
      await consume(other.key, "api-calls", 1, "later-5");
      await consume(other.key, "api-calls", 1, "later-6");
      const failed = await created({ report_kind: "usage-ledger", format: "pdf" });
      assert.equal(failed.status, "failed");
      assert.equal(failed.artifact_digest, null);
      assert.match(failed.digest, /^[0-9a-f]{64}$/, "the snapshot was frozen all the same");
      assert.equal((await eventsFor(failed.id)).length, 1);
      const refused = await h.request({ url: `${EXPORTS}/${failed.id}/download` });
      assert.equal(refused.status, 409);
      assert.equal(refused.json.error.code, "CONFLICT");
      assert.match(refused.json.error.detail, /is failed: the report has 13 rows and a PDF export holds at most 12/);
    });

    it("CSV: the snapshot's columns as header, every row, formula cells defused, RFC 4180 round trip", async () => {
      const json = await created({ report_kind: "usage-ledger", filters: { license_id: lic.licenseId } });
      const csv = await created({ report_kind: "usage-ledger", format: "csv", filters: { license_id: lic.licenseId } });
      assert.equal(csv.digest, json.digest, "same data, same snapshot: the digest does not depend on the format");
      const snapshot = JSON.parse((await download(json.id)).bytes.toString("utf8")) as ReportSnapshot;
      const bytes = (await download(csv.id)).bytes;
      assert.notEqual(bytes[0], 0xef, "no BOM");
      const records = parseCsv(bytes.toString("utf8"));
      assert.deepEqual(records[0], snapshot.table.columns);
      for (const c of ["occurred_at", "event_id", "license_id", "feature_code", "amount"]) assert.ok(records[0]!.includes(c), c);
      assert.equal(records.length - 1, snapshot.table.rows.length);
      const col = (name: string) => records[0]!.indexOf(name);
      const eventIds = records.slice(1).map((r) => r[col("event_id")]);
      for (const defused of ["'=HYPERLINK(\"http://evil.example\",\"click\")", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(1+1)"]) {
        assert.ok(eventIds.includes(defused), `${defused} in ${JSON.stringify(eventIds)}`);
      }
      assert.ok(eventIds.includes('batch "7", part 1\nsecond line'), "quotes, comma and newline round-trip");
      assert.ok(records.slice(1).every((r) => r[col("license_id")] === lic.licenseId));
      snapshot.table.rows.forEach((cells, i) => {
        cells.forEach((cell, j) => {
          const field = records[i + 1]![j]!;
          if (cell === null) assert.equal(field, "");
          else if (typeof cell === "number") assert.equal(Number(field), cell, "numbers are written bare");
          else assert.equal(undefuse(field), cell);
        });
      });
    });

    it("PDF: pdftotext finds the title and the rows; pdftoppm renders page 1", async () => {
      const meta = await created({ report_kind: "usage-ledger", format: "pdf", filters: { license_id: lic.licenseId } });
      const json = await created({ report_kind: "usage-ledger", filters: { license_id: lic.licenseId } });
      const snapshot = JSON.parse((await download(json.id)).bytes.toString("utf8")) as ReportSnapshot;
      const pdf = (await download(meta.id)).bytes;
      assert.equal(pdf.subarray(0, 5).toString("latin1"), "%PDF-");
      const text = pdfText(pdf, `ledger-${engine}`);
      assert.match(text, /LicenseKit — Usage ledger \(usage-ledger\)/);
      assert.ok(text.includes(meta.digest), "the snapshot digest is printed");
      const lines = text.split("\n");
      const licenseCol = snapshot.table.columns.indexOf("license_id");
      const featureCol = snapshot.table.columns.indexOf("feature_code");
      const amountCol = snapshot.table.columns.indexOf("amount");
      const occurredCol = snapshot.table.columns.indexOf("occurred_at");
      assert.ok(snapshot.table.rows.length >= 5);
      for (const r of snapshot.table.rows) {
        const line = lines.find((l) => l.includes(String(r[occurredCol])) && l.includes(String(r[licenseCol])));
        assert.ok(line, `a line with ${r[occurredCol]} and ${r[licenseCol]}`);
        assert.ok(line.includes(String(r[featureCol])) && new RegExp(`\\b${r[amountCol]}\\b`).test(line), `row ${JSON.stringify(r)} in "${line}"`);
      }
      assert.match(text, /Page 1 of \d+/);
      // Re-rendering the stored snapshot gives the same bytes (the stored artifact stays the reference).
      const stored = await row(meta.id);
      assert.ok((await renderExportArtifact("pdf", stored.snapshot!, stored.digest!, { pdfMaxRows: PDF_MAX_ROWS })).equals(pdf));
      const png = pdfPage1Png(pdf, `ledger-${engine}`);
      assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
      if (engine === "sqlite" && fs.existsSync(path.dirname(PNG_OUT))) {
        // A sample for a human to look at; page 1 of the summary export has the chart.
        const summary = await created({ report_kind: "usage-summary", format: "pdf", filters: { group_by: "feature_code", bucket: "1h" } });
        fs.writeFileSync(PNG_OUT, pdfPage1Png((await download(summary.id)).bytes, "sample-summary"));
      }
    });

    it("GET metadata and the list: newest first, cursor paging sees every export once", async () => {
      await created({ report_kind: "usage-summary" });
      const all = await h.lk.store.db.selectFrom("report_exports").select("id").orderBy("id", "desc").execute();
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Reply = await h.request({ url: `${EXPORTS}?limit=2${cursor ? `&cursor=${cursor}` : ""}` });
        assert.equal(page.status, 200, page.text);
        assert.ok(page.json.data.length <= 2);
        for (const e of page.json.data) {
          assert.deepEqual(Object.keys(e).sort(), METADATA_KEYS);
          seen.push(e.id);
        }
        cursor = page.json.page_info.next_cursor;
      } while (cursor);
      assert.deepEqual(
        seen,
        all.map((r) => r.id),
      );
      const one = await h.request({ url: `${EXPORTS}/${seen[0]}` });
      assert.equal(one.status, 200);
      assert.equal(one.json.data.id, seen[0]);
      assert.equal(one.json.data.report_kind, "usage-summary");
    });

    it("404 for unknown exports; 409 CONFLICT naming the status when not ready", async () => {
      for (const url of [`${EXPORTS}/rptx_01AAAAAAAAAAAAAAAAAAAAAAAA`, `${EXPORTS}/rptx_01AAAAAAAAAAAAAAAAAAAAAAAA/download`]) {
        const r = await h.request({ url });
        assert.equal(r.status, 404);
        assert.equal(r.json.error.code, "NOT_FOUND");
      }
      // A process that died between storing the snapshot and storing the artifact leaves it pending.
      const meta = await created({ report_kind: "usage-summary" });
      await h.lk.store.db.updateTable("report_exports").set({ status: "pending", artifact: null, artifact_digest: null }).where("id", "=", meta.id).execute();
      const r = await h.request({ url: `${EXPORTS}/${meta.id}/download` });
      assert.equal(r.status, 409);
      assert.equal(r.json.error.code, "CONFLICT");
      assert.match(r.json.error.detail, new RegExp(`report export ${meta.id} is pending; only a ready export can be downloaded`));
      assert.equal((await h.request({ url: `${EXPORTS}/${meta.id}` })).json.data.status, "pending");
    });

    it("validation: body shape is 400 INVALID_JSON, rules are 422 VALIDATION_ERROR naming the field; nothing is stored", async () => {
      const before = (await h.lk.store.db.selectFrom("report_exports").select("id").execute()).length;
      const cases: [unknown, number, string, RegExp][] = [
        [{}, 422, "VALIDATION_ERROR", /field report_kind: is required/],
        [{ report_kind: "sales" }, 422, "VALIDATION_ERROR", /field report_kind: must be one of usage-summary/],
        [{ report_kind: "usage-ledger", format: "xlsx" }, 422, "VALIDATION_ERROR", /field format: must be one of json, csv, pdf/],
        [{ report_kind: "usage-ledger", filters: { from: "yesterday" } }, 422, "VALIDATION_ERROR", /field filters\.from: must be an RFC 3339 date-time/],
        [{ report_kind: "usage-ledger", filters: { from: "2026-03-02T00:00:00Z", to: "2026-03-01T00:00:00Z" } }, 422, "VALIDATION_ERROR", /field filters\.from: must not be after to/],
        [{ report_kind: "usage-ledger", filters: { product_id: "p".repeat(201) } }, 422, "VALIDATION_ERROR", /field filters\.product_id: must be at most 200 characters/],
        [{ report_kind: "license-audit", filters: { license_id: "lic_x", limit: 1.5 } }, 422, "VALIDATION_ERROR", /field filters\.limit: must be an integer/],
        [{ report_kind: "usage-ledger", filters: { bogus: "1" } }, 422, "VALIDATION_ERROR", /field filters\.bogus: unknown parameter/],
        [{ report_kind: "usage-summary", filters: { group_by: "planet" } }, 422, "VALIDATION_ERROR", /field filters\.group_by: must be one of/],
        [{ report_kind: "usage-ledger", filters: { limit: 10 } }, 422, "VALIDATION_ERROR", /field filters\.limit: a usage-ledger export holds every matching row/],
        [{ report_kind: "usage-summary", filters: { cursor: "abc" } }, 422, "VALIDATION_ERROR", /field filters\.cursor: an export holds every matching row/],
        [{ report_kind: "license-audit" }, 422, "VALIDATION_ERROR", /field filters\.license_id: is required/],
        [{ report_kind: "license-audit", filters: { license_id: "lic_01AAAAAAAAAAAAAAAAAAAAAAAA" } }, 422, "VALIDATION_ERROR", /field filters\.license_id: license .* not found/],
        [{ report_kind: "customer-summary", filters: { customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" } }, 422, "VALIDATION_ERROR", /field filters\.customer_id: customer .* not found/],
        [{ report_kind: "usage-ledger", filters: "from=2026" }, 400, "INVALID_JSON", /field filters: must be an object/],
        [{ report_kind: "usage-ledger", filters: { from: true } }, 400, "INVALID_JSON", /field filters\.from: must be/],
        [{ report_kind: "usage-ledger", extra: 1 }, 400, "INVALID_JSON", /field extra: unknown field/],
        [{ report_kind: 7 }, 400, "INVALID_JSON", /field report_kind: must be a string/],
      ];
      for (const [body, status, code, detail] of cases) {
        const r = await create(body);
        assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.text}`);
        assert.equal(r.json.error.code, code, r.text);
        assert.match(r.json.error.detail, detail, r.text);
      }
      assert.equal((await h.lk.store.db.selectFrom("report_exports").select("id").execute()).length, before);
    });

    it("license-audit, customer-summary and subscription-settlement exports work in every format", async () => {
      const customer = await h.request({ url: "/api/v1/customers", body: { name: "Acme", code: `acme-${engine}` } });
      assert.equal(customer.status, 201, customer.text);
      const subscription = await h.request({
        url: `/api/v1/products/${lic.productId}/subscriptions`,
        body: { external_system: "stripe", external_id: `sub-${engine}`, status: "active", current_period_start: "2026-03-01T00:00:00Z", current_period_end: "2026-04-01T00:00:00Z" },
      });
      assert.equal(subscription.status, 201, subscription.text);
      for (const [kind, filters] of [
        ["license-audit", { license_id: lic.licenseId }],
        ["customer-summary", { customer_id: customer.json.data.id }],
        ["subscription-settlement", { subscription_id: subscription.json.data.id, group_by: "license_id" }],
      ] as const) {
        for (const format of ["json", "csv", "pdf"] as const) {
          const meta = await created({ report_kind: kind, format, filters });
          assert.equal(meta.status, "ready", `${kind} ${format}`);
          const d = await download(meta.id);
          assert.equal(d.status, 200);
          assert.equal(sha256(d.bytes), meta.artifact_digest);
          if (format === "pdf") assert.match(pdfText(d.bytes, `${kind}-${engine}`), new RegExp(`LicenseKit — .* \\(${kind}\\)`));
        }
      }
    });

    it("Idempotency-Key: a retry replays the answer without a second export or event; another body with the key is 409", async () => {
      const body = { report_kind: "usage-summary", format: "csv", filters: { group_by: "feature_code" } };
      const a = await create(body, { idempotencyKey: `export-${engine}` });
      assert.equal(a.status, 201, a.text);
      const b = await create(body, { idempotencyKey: `export-${engine}` });
      assert.equal(b.status, 201);
      assert.equal(b.headers["idempotent-replayed"], "true");
      assert.equal(b.text, a.text, "the stored answer, byte for byte");
      const rows = await h.lk.store.db.selectFrom("report_exports").select("id").where("digest", "=", a.json.data.digest).where("format", "=", "csv").execute();
      assert.equal(rows.length, 1);
      assert.equal((await eventsFor(a.json.data.id)).length, 1);
      const c = await create({ ...body, format: "pdf" }, { idempotencyKey: `export-${engine}` });
      assert.equal(c.status, 409);
      assert.equal(c.json.error.code, "IDEMPOTENCY_CONFLICT");
    });

    it("scope report:export: created_by is the key; report:read alone is refused", async () => {
      const key = await h.request({ url: "/api/v1/api-keys", body: { name: `exporter-${engine}`, scopes: ["report:export"] } });
      assert.equal(key.status, 201, key.text);
      const r = await create({ report_kind: "usage-summary" }, { token: key.json.data.token });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.data.created_by, key.json.data.api_key.id);
      const ev = await eventsFor(r.json.data.id);
      assert.equal(ev[0]!.actor_id, key.json.data.api_key.id);
      const meta = JSON.parse(ev[0]!.metadata);
      assert.deepEqual({ report_kind: meta.report_kind, format: meta.format, digest: meta.digest }, { report_kind: "usage-summary", format: "json", digest: r.json.data.digest });
      const reader = await h.request({ url: "/api/v1/api-keys", body: { name: `reader-${engine}`, scopes: ["report:read"] } });
      const denied = await create({ report_kind: "usage-summary" }, { token: reader.json.data.token });
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.detail, "requires report:export");
    });
  });
}
