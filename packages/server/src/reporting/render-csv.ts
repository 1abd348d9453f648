// CSV rendering of a frozen report snapshot's table (RFC 4180, with spreadsheet-formula defusing).
//
// - One header record (table.columns), then one record per row, every record ending in CRLF.
// - A field is quoted when it contains `"`, `,`, CR or LF; a `"` inside it is doubled.
// - UTF-8 without a byte-order mark: the download says `text/csv; charset=utf-8`, and a BOM would
//   become part of the first header name for most CSV parsers.
// - null is an empty field; a number is written as JSON writes it (`-12`, `0.5`).
// - Formula injection (OWASP "CSV Injection"): a TEXT cell that starts with `=`, `+`, `-`, `@`, tab
//   or CR would be run as a formula by spreadsheet programs, so it gets a single quote `'` in front
//   (`=SUM(A1)` → `'=SUM(A1)`, `-x` → `'-x`). Cells that are numbers in the snapshot are written
//   bare, so a negative amount stays a number (`-5`), while the text "-5" is defused (`'-5`). Header
//   names are text and follow the same rule. Consumers that need the raw text strip one leading `'`
//   from text cells that start with `'` followed by one of those characters.
import type { ReportCell, ReportSnapshot } from "./types.js";

export const CSV_CONTENT_TYPE = "text/csv; charset=utf-8";

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** A text cell as it is written: defused if it could start a formula, then quoted if needed. */
export function csvTextField(text: string): string {
  const safe = FORMULA_START.test(text) ? `'${text}` : text;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvField(cell: ReportCell): string {
  if (cell === null) return "";
  if (typeof cell === "number") {
    if (!Number.isFinite(cell)) throw new TypeError(`CSV: a number cell is ${cell}`);
    return JSON.stringify(cell);
  }
  return csvTextField(cell);
}

export function renderCsv(snapshot: ReportSnapshot): Buffer {
  const { columns, rows } = snapshot.table;
  const lines: string[] = [columns.map(csvTextField).join(",")];
  for (const row of rows) lines.push(row.map(csvField).join(","));
  return Buffer.from(`${lines.join("\r\n")}\r\n`, "utf8");
}
