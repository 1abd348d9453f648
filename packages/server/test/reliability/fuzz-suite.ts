// Hostile input (issue 9 item 4): property-based fuzzing of every route with fast-check.
//
// The operations come from the served /api/v1/openapi.json (so a new route is fuzzed the day it is
// added), plus the hidden /api/v1/openapi.json itself and unknown paths. Each generated request picks
// an operation and gives it junk: known body fields with wrong types, huge numbers, NaN-ish strings,
// long strings, Unicode (lone surrogates, RTL, NUL), nested arrays; bodies that are not JSON; wrong
// content types; query strings with junk, SQL-looking and repeated parameters; odd path ids (long,
// encoded slashes, `..`, invalid UTF-8); junk Idempotency-Key / Authorization / x-request-id and
// large header values. Most requests carry valid credentials (the admin token, a real license key on
// runtime routes) so they reach the handlers. Most go through app.inject (the real Fastify stack and
// database); one in twenty goes over a real loopback socket.
//
// The property: never a 5xx; every non-2xx answer is the D1 envelope with a documented code whose
// status it carries, JSON content type, and the x-request-id header equal to meta.request_id; a
// request whose only filter is SQL-looking gets an empty list, never rows.
//
// Transport-level cases over real HTTP: oversized bodies → 413, a stalled body → the request timeout
// (LICENSEKIT_REQUEST_TIMEOUT_MS), headers over Node's limit and a malformed request line → the
// envelope, 10,000 levels of nesting → 400 INVALID_JSON.
//
// Reproducible: the seed is fixed (LICENSEKIT_FUZZ_SEED overrides it); LICENSEKIT_FUZZ_RUNS is the
// number of generated requests across all engines (default 20,000, split evenly: 20,000 on SQLite
// alone, 10,000 each with PostgreSQL). Seed, counts and durations are printed. Run by
// fuzz-sqlite.test.ts and fuzz-postgres.test.ts.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ERROR_CODES } from "../../src/http/errors.js";
import { operationsOf, resolveSchema } from "../helpers/conformance.js";
import type { Doc } from "../helpers/contract.js";
import { ENGINES, type TestEngine } from "../helpers/engines.js";
import { ADMIN_TOKEN, type Harness, issueLicense, listen, startHarness } from "../helpers/harness.js";

const SEED = Number.parseInt(process.env.LICENSEKIT_FUZZ_SEED ?? "", 10) || 20260301;
const TOTAL_RUNS = Number.parseInt(process.env.LICENSEKIT_FUZZ_RUNS ?? "", 10) || 20_000;
const RUNS_PER_ENGINE = Math.ceil(TOTAL_RUNS / ENGINES.length);
/** One generated request in this many goes over a real socket instead of app.inject. */
const HTTP_SHARE = 20;
/** The slow-body test's request timeout. */
const TEST_REQUEST_TIMEOUT_MS = 600;

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

interface FuzzOp {
  key: string;
  method: Method;
  /** Path template with {params}. */
  path: string;
  surface: "system" | "runtime" | "management" | "unknown";
  pathParams: string[];
  query: { name: string; schema: Doc }[];
  /** Known request body fields and their (resolved) schemas; null when the operation takes none. */
  body: Record<string, Doc> | null;
}

interface FuzzRequest {
  op: FuzzOp;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload: string | Buffer | undefined;
  /** Set when the query's only non-pagination parameter has a SQL-looking value. */
  sqlFilter: boolean;
  overHttp: boolean;
}

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

// ---------------------------------------------------------------- value arbitraries

/** A JSON literal written into the body as is (numbers JSON.stringify cannot produce). */
class Raw {
  constructor(readonly text: string) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
      .join(",")}}`;
  }
  if (typeof v === "number" && !Number.isFinite(v)) return "null";
  return JSON.stringify(v) ?? "null";
}

const SQL_VALUES = [
  "' OR 1=1 --",
  "' OR '1'='1",
  "1; DROP TABLE licenses; --",
  '" OR ""="',
  "%' OR 1=1 --",
  "') OR ('a'='a",
  "1 UNION SELECT * FROM api_keys --",
  "%",
  "_",
  "*",
  "\\",
];

const ODD_STRINGS = [
  "",
  " ",
  "NaN",
  "Infinity",
  "-Infinity",
  "-0",
  "1e308",
  "1e400",
  "18446744073709551616",
  "-9223372036854775809",
  "0x10",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "\u0000",
  "a\u0000b",
  "\uD800",
  "\uDFFF",
  "x\uD83Dy",
  "\u202Egnp.exe",
  "\u05E9\u05DC\u05D5\u05DD",
  "\uFEFF",
  "\u200B",
  "💩🏳️‍🌈",
  "e\u0301",
  "<script>alert(1)</script>",
  "$" + "{jndi:ldap://x}",
  "../../etc/passwd",
  "__proto__",
  "constructor",
  "2026-02-30T25:61:61Z",
  "0000-00-00T00:00:00.000Z",
  "9999-12-31T23:59:59.999Z",
  "2026-03-01",
  "not-an-email@",
  "http://127.0.0.1/",
  ...SQL_VALUES,
];

const HUGE_NUMBERS: unknown[] = [
  1e308,
  -1e308,
  -0,
  2 ** 64,
  -(2 ** 64),
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  2 ** 31,
  -(2 ** 31) - 1,
  0.1,
  1.5,
  -1,
  0,
  1,
  5e-324,
  new Raw("1e400"),
  new Raw("-1e400"),
  new Raw("18446744073709551616"),
  new Raw("123456789012345678901234567890"),
  new Raw("-0.0"),
  new Raw("1E+2"),
];

const longString = fc.oneof(
  fc.nat({ max: 40_000 }).map((n) => "x".repeat(n + 256)),
  fc.tuple(fc.string({ minLength: 1, maxLength: 4, unit: "binary" }), fc.nat({ max: 3000 })).map(([s, n]) => s.repeat(n + 64)),
);

const oddString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 3, arbitrary: fc.string({ maxLength: 40, unit: "binary" }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40, unit: "grapheme" }) },
  { weight: 1, arbitrary: longString },
);

/** Anything JSON can hold, biased towards values that break parsers and type checks. */
const junkValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 4, arbitrary: oddString },
    { weight: 3, arbitrary: fc.constantFrom(...HUGE_NUMBERS) },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.double({ noNaN: true }) },
    { weight: 2, arbitrary: fc.constantFrom(true, false, null) },
    { weight: 2, arbitrary: fc.array(tie("v"), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(oddString.filter((s) => s.length < 64), tie("v"), { maxKeys: 3 }) },
    { weight: 1, arbitrary: fc.nat({ max: 60 }).map((n) => JSON.parse("[".repeat(n + 1) + "]".repeat(n + 1))) },
  ),
})).v;

/** A value that fits the field's schema (so requests get past validation); junk too unless `strict`. */
function plausibleValue(schema: Doc, ids: fc.Arbitrary<string>, strict = false): fc.Arbitrary<unknown> {
  const s = schema ?? {};
  const variants = [s, ...(s.anyOf ?? []), ...(s.oneOf ?? [])];
  const options: fc.Arbitrary<unknown>[] = [];
  for (const v of variants) {
    if (Array.isArray(v.enum)) options.push(fc.constantFrom(...v.enum));
    if ("const" in v) options.push(fc.constant(v.const));
    if (v.type === "string" && v.format === "date-time") options.push(DATE_TIME);
    else if (v.type === "string" && v.format === "email") options.push(fc.constantFrom("a@example.com", "x@y.z", "é@ü.de"));
    else if (v.type === "string" && v.format === "uri") options.push(fc.constantFrom("https://example.com/hook", "http://127.0.0.1:1/x"));
    else if (v.type === "string" && !v.enum) options.push(fc.oneof(ids, SLUG));
    if (v.type === "integer") options.push(fc.integer({ min: v.minimum ?? -5, max: Math.min(v.maximum ?? 1000, 1_000_000) }));
    if (v.type === "boolean") options.push(fc.boolean());
    if (v.type === "array") options.push(fc.array(plausibleValue(v.items, ids, strict), { maxLength: 3 }));
    if (v.type === "object") options.push(fc.dictionary(SMALL_KEY, strict ? fc.oneof(SLUG, fc.integer()) : junkValue, { maxKeys: 3 }));
  }
  if (options.length === 0) return junkValue;
  if (strict) return fc.oneof(...options);
  return fc.oneof({ weight: 3, arbitrary: fc.oneof(...options) }, { weight: 2, arbitrary: junkValue });
}

const DATE_TIME = fc.date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }).map((d) => d.toISOString());
const SLUG = fc.stringMatching(/^[a-z0-9-]{1,24}$/);
const SMALL_KEY = fc.stringMatching(/^[a-z_]{1,12}$/);
const SHORT_ODD = oddString.filter((s) => s.length < 64);
const MEDIUM_ODD = oddString.filter((s) => s.length < 200);

// ---------------------------------------------------------------- URL pieces

/** Percent-encodes every byte outside the unreserved set (lone surrogates become U+FFFD). */
function pct(s: string | Uint8Array): string {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : Buffer.from(s);
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const ODD_PATH_SEGMENTS = [
  "..",
  "%2e%2e",
  ".",
  "a%2Fb",
  "%2F",
  "..%2F..%2Fetc%2Fpasswd",
  "%00",
  "%FF",
  "%C0%AF",
  "%E0%A4%A",
  "%",
  "%zz",
  "x_01AAAAAAAAAAAAAAAAAAAAAAAA",
  "lic_01AAAAAAAAAAAAAAAAAAAAAAAA",
  "-1",
  "0",
  "1e308",
  "null",
  "%27%20OR%201%3D1%20--",
  "%F0%9F%92%A9",
  "%E2%80%AE",
  "%D7%A9%D7%9C",
];

function pathId(realIds: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: realIds },
    { weight: 3, arbitrary: fc.constantFrom(...ODD_PATH_SEGMENTS) },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 60, unit: "binary" }).map(pct) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map(pct) },
    { weight: 1, arbitrary: fc.nat({ max: 400 }).map((n) => "a".repeat(n + 60)) },
  );
}

function queryValue(schema: Doc, ids: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: plausibleValue(schema, ids).map((v) => (typeof v === "string" ? v : toJson(v))) },
    { weight: 3, arbitrary: oddString },
    { weight: 1, arbitrary: fc.constantFrom(...SQL_VALUES) },
  );
}

function queryArb(op: FuzzOp, ids: fc.Arbitrary<string>): fc.Arbitrary<{ qs: string; sqlFilter: boolean }> {
  const known = op.query;
  const pair: fc.Arbitrary<[string, string]> =
    known.length > 0
      ? fc.oneof(
          { weight: 5, arbitrary: fc.oneof(...known.map((p) => queryValue(p.schema, ids).map((v) => [p.name, v] as [string, string]))) },
          { weight: 1, arbitrary: fc.tuple(SHORT_ODD, MEDIUM_ODD) },
        )
      : fc.tuple(SHORT_ODD, MEDIUM_ODD);
  const filters = known.filter((p) => p.name !== "limit" && p.name !== "cursor" && p.schema?.type === "string" && !p.schema.enum && !p.schema.format);
  const plain = fc
    .tuple(fc.array(pair, { maxLength: 5 }), fc.constantFrom("", "", "", "&&", "&=", "&limit", "&%zz=%", "&a[b]=c", "&x=%E0%A4%A"))
    .map(([pairs, tail]) => ({ qs: pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join("&") + tail, sqlFilter: false }));
  if (filters.length === 0) return plain;
  // One string filter with a SQL-looking value (and perhaps a valid limit): must match nothing.
  const sql = fc
    .tuple(fc.constantFrom(...filters), fc.constantFrom(...SQL_VALUES.slice(0, 7)), fc.boolean())
    .map(([p, v, limit]) => ({ qs: `${p.name}=${pct(v)}${limit ? "&limit=100" : ""}`, sqlFilter: true }));
  return fc.oneof({ weight: 6, arbitrary: plain }, { weight: 1, arbitrary: sql });
}

// ---------------------------------------------------------------- headers and bodies

const HEADER_CHARS = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
const LATIN1_HEADER = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 80 });

const headerJunk = fc.oneof(
  { weight: 3, arbitrary: HEADER_CHARS },
  { weight: 1, arbitrary: LATIN1_HEADER },
  { weight: 1, arbitrary: fc.nat({ max: 8000 }).map((n) => "h".repeat(n + 1)) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\t", "null", "' OR 1=1 --", "%00", "x".repeat(256), "x".repeat(255)) },
);

/** The runtime license key can change during a run (a bulk action may revoke it), so it is filled in when sent. */
const KEY = "{license_key}";
const TYPED_KEY = "{typed_license_key}";

function authorizationArb(op: FuzzOp): fc.Arbitrary<string | undefined> {
  const valid = op.surface === "runtime" ? `License ${KEY}` : `Bearer ${ADMIN_TOKEN}`;
  const typedKey = `License ${TYPED_KEY}`;
  const licenseKey = KEY;
  return fc.oneof(
    { weight: 30, arbitrary: fc.constant(valid) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(typedKey, `Bearer ${licenseKey}`, `License ${ADMIN_TOKEN}`, "Bearer", "License", "Basic YTpi", `Bearer ${ADMIN_TOKEN}x`, `bearer ${ADMIN_TOKEN}`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("Bearer ", "License ", "", "Bearer  "), headerJunk).map(([a, b]) => a + b) },
  );
}

const CONTENT_TYPES = [
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/xml",
  "application/json-patch+json",
  "application/json; charset=latin1",
  "application/json; charset=utf-16",
  "APPLICATION/JSON",
  "application/jsonx",
  "*/*",
  "",
  ";",
  "application/octet-stream",
];

const NOT_JSON = ["{not json", "{", "}", "[", "nul", "tru", "'a'", "{'a':1}", '{"a":1,}', '{"a":1}{"b":2}', "\u0000", "\uFEFF{}", "{\"__proto__\":{\"x\":1}}", '{"constructor":{"prototype":{"x":1}}}', "1e400", "-", '"\\ud800"', '{"a":"\\u0000"}'];

interface BodyPart {
  payload: string | Buffer | undefined;
  contentType: string | undefined;
}

function bodyArb(op: FuzzOp, ids: fc.Arbitrary<string>): fc.Arbitrary<BodyPart> {
  const json = (v: fc.Arbitrary<unknown>): fc.Arbitrary<BodyPart> => v.map((x) => ({ payload: toJson(x), contentType: "application/json" }));
  const notJson = fc.oneof(
    fc.constantFrom(...NOT_JSON),
    fc.string({ maxLength: 200, unit: "binary" }),
    fc.nat({ max: 20_000 }).map((n) => "[".repeat(n + 1)),
  );
  const raw: fc.Arbitrary<BodyPart> = fc.oneof(
    notJson.map((s) => ({ payload: s, contentType: "application/json" })),
    fc.uint8Array({ maxLength: 64 }).map((b) => ({ payload: Buffer.from(b), contentType: "application/json" })),
    fc.tuple(fc.constantFrom(...CONTENT_TYPES), fc.oneof(notJson, fc.constant('{"name":"x"}'))).map(([ct, s]) => ({ payload: s, contentType: ct })),
  );
  const none = fc.constantFrom<BodyPart>({ payload: undefined, contentType: undefined }, { payload: "", contentType: "application/json" }, { payload: "   ", contentType: "application/json" });
  if (!op.body) {
    return fc.oneof({ weight: 8, arbitrary: none }, { weight: 1, arbitrary: json(junkValue) }, { weight: 1, arbitrary: raw });
  }
  const fields = Object.entries(op.body);
  // Some fields each (any subset), with values that fit the schema, or fit it only now and then.
  const strict = fc.record(Object.fromEntries(fields.map(([k, schema]) => [k, plausibleValue(schema, ids, true)])), { requiredKeys: [] });
  const mixed = fc.record(Object.fromEntries(fields.map(([k, schema]) => [k, plausibleValue(schema, ids)])), { requiredKeys: [] });
  const withExtra = fc.tuple(mixed, fc.option(fc.tuple(SHORT_ODD, junkValue), { freq: 6 })).map(([o, extra]) => (extra ? { ...o, [extra[0]]: extra[1] } : o));
  return fc.oneof(
    { weight: 6, arbitrary: json(strict) },
    { weight: 8, arbitrary: json(withExtra) },
    { weight: 1, arbitrary: json(junkValue) },
    { weight: 2, arbitrary: raw },
    { weight: 1, arbitrary: none },
  );
}

function requestArb(ops: FuzzOp[], realIds: string[]): fc.Arbitrary<FuzzRequest> {
  const ids = fc.constantFrom(...realIds);
  // Built once per operation: constructing arbitraries inside chain() on every run is slow.
  return fc.oneof(...ops.map((op) => opRequestArb(op, ids)));
}

function opRequestArb(op: FuzzOp, ids: fc.Arbitrary<string>): fc.Arbitrary<FuzzRequest> {
  return fc
      .record({
        ids: fc.tuple(...op.pathParams.map(() => pathId(ids)), fc.constant("")),
        query: fc.oneof({ weight: 2, arbitrary: fc.constant({ qs: "", sqlFilter: false }) }, { weight: 3, arbitrary: queryArb(op, ids) }),
        body: bodyArb(op, ids),
        authorization: authorizationArb(op),
        idempotencyKey: fc.option(fc.oneof(fc.uuid(), headerJunk), { freq: 3 }),
        requestId: fc.option(headerJunk, { freq: 4 }),
        extra: fc.option(fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), headerJunk), { freq: 4 }),
        accept: fc.option(fc.constantFrom("application/xml", "*/*", "text/html", "application/json;q=0", ""), { freq: 6 }),
        method: fc.oneof({ weight: 15, arbitrary: fc.constant(op.method) }, { weight: 1, arbitrary: fc.constantFrom<Method>("GET", "POST", "PUT", "PATCH", "DELETE") }),
        overHttp: fc.nat({ max: HTTP_SHARE - 1 }).map((n) => n === 0),
      })
      .map((r) => {
        let i = 0;
        const pathname = op.path.replace(/\{[a-z_]+\}/g, () => r.ids[i++] ?? "x");
        const headers: Record<string, string> = {};
        if (r.authorization !== undefined) headers.authorization = r.authorization;
        if (r.body.contentType !== undefined) headers["content-type"] = r.body.contentType;
        if (r.idempotencyKey !== null) headers["idempotency-key"] = r.idempotencyKey;
        if (r.requestId !== null) headers["x-request-id"] = r.requestId;
        if (r.extra !== null) headers[r.extra[0]] = r.extra[1];
        if (r.accept !== null) headers.accept = r.accept;
        return {
          op,
          method: r.method,
          url: r.query.qs ? `${pathname}?${r.query.qs}` : pathname,
          headers,
          payload: r.body.payload,
          sqlFilter: r.query.sqlFilter && r.method === op.method,
          overHttp: r.overHttp,
        };
      });
}

// ---------------------------------------------------------------- sending and checking

async function sendInject(h: Harness, r: { method: string; url: string; headers: Record<string, string>; payload?: string | Buffer }): Promise<Answer> {
  const res = await h.app.inject({ method: r.method as Method, url: r.url, headers: r.headers, payload: r.payload });
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

function sendHttp(base: string, r: { method: string; url: string; headers: Record<string, string>; payload?: string | Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = http.request({ host: u.hostname, port: u.port, method: r.method, path: r.url, headers: r.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    if (r.payload !== undefined) req.end(r.payload);
    else req.end();
  });
}

/** What is wrong with an answer, or null. */
function problemOf(res: Answer, sqlFilter: boolean): string | null {
  if (res.status >= 500) return `status ${res.status}`;
  const rid = res.headers["x-request-id"];
  if (typeof rid !== "string" || !rid.startsWith("req_")) return "no x-request-id header";
  if (res.status < 300) {
    if (!sqlFilter) return null;
    let json: Doc;
    try {
      json = JSON.parse(res.body);
    } catch {
      return "2xx list answer is not JSON";
    }
    if (Array.isArray(json?.data) && json.data.length > 0) return `a SQL-looking filter value matched ${json.data.length} rows`;
    return null;
  }
  if (!String(res.headers["content-type"] ?? "").startsWith("application/json")) return `content-type ${res.headers["content-type"]}`;
  let json: Doc;
  try {
    json = JSON.parse(res.body);
  } catch {
    return "error body is not JSON";
  }
  const code = json?.error?.code as keyof typeof ERROR_CODES;
  const spec = ERROR_CODES[code];
  if (!spec) return `unknown error code ${String(code)}`;
  if (spec.status !== res.status) return `code ${code} with status ${res.status}`;
  if (json.error.message !== spec.message) return "message differs from the code's";
  if (json.error.detail !== undefined && typeof json.error.detail !== "string") return "detail is not a string";
  const keys = Object.keys(json).sort().join(",");
  if (keys !== "error,meta" && keys !== "error,meta,signature") return `envelope keys ${keys}`;
  if (json.meta?.request_id !== rid) return "meta.request_id differs from x-request-id";
  if (Number.isNaN(Date.parse(json.meta?.timestamp))) return "meta.timestamp is not a date";
  return null;
}

function describeRequest(r: FuzzRequest, res?: Answer): string {
  const body = r.payload === undefined ? "" : ` body=${JSON.stringify(String(r.payload).slice(0, 300))}`;
  const got = res ? ` → ${res.status} ${res.body.slice(0, 300)}` : "";
  return `${r.method} ${r.url.slice(0, 300)} headers=${JSON.stringify(r.headers).slice(0, 300)}${body}${got}`;
}

// ---------------------------------------------------------------- fixtures

interface Fixture {
  licenseKey: string;
  runtimeLicenseId: string;
  ids: string[];
}

async function must(h: Harness, url: string, body: unknown, method: "POST" | "PUT" = "POST"): Promise<Doc> {
  const res = await h.request({ method, url, body });
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${res.text}`);
  return res.json?.data;
}

/** A runtime license with floating seats, offline and a quota feature, and a second product whose ids the fuzzer may change. */
async function setUp(h: Harness): Promise<Fixture> {
  const rt = await issueLicense(h, { max_activations: 50, max_floating_users: 5, allow_offline_activation: true, allow_vm: true, allow_container: true });
  const rtFeature = await must(h, `/api/v1/products/${rt.productId}/features`, { name: "Exports", code: "exports" });
  await must(h, `/api/v1/licenses/${rt.licenseId}/features`, { feature_id: rtFeature.id, max_consumptions: 1_000_000 });

  const victim = await issueLicense(h, { max_floating_users: 2, allow_offline_activation: true });
  const customer = await must(h, "/api/v1/customers", { name: "Fuzz Customer", code: "fuzz-customer", email: "fuzz@example.com" });
  const feature = await must(h, `/api/v1/products/${victim.productId}/features`, { name: "Feature", code: "feat" });
  await must(h, `/api/v1/licenses/${victim.licenseId}/features`, { feature_id: feature.id, max_consumptions: 10 });
  const field = await must(h, `/api/v1/products/${victim.productId}/custom-fields`, { resource_type: "license", code: "seat", name: "Seat", value_type: "string" });
  const sub = await must(h, `/api/v1/products/${victim.productId}/subscriptions`, {
    customer_id: customer.id,
    external_system: "stripe",
    external_id: "sub_fuzz",
    status: "active",
    current_period_start: "2026-03-01T00:00:00.000Z",
    current_period_end: "2026-04-01T00:00:00.000Z",
  });
  const order = await must(h, `/api/v1/products/${victim.productId}/orders`, { customer_id: customer.id, subscription_id: sub.id, external_system: "stripe", external_id: "in_fuzz", status: "paid" });
  const webhook = await must(h, "/api/v1/webhooks", { name: "Hook", url: "https://example.com/hook", event_types: ["license.created"] });
  const apiKey = await must(h, "/api/v1/api-keys", { name: "fuzz key" });
  const version = await must(h, `/api/v1/products/${victim.productId}/versions`, { version: "1.0.0" });
  const act = await h.request({ url: "/api/v1/license/activate", licenseKey: victim.key, body: { fingerprint: "fuzz-device-1" } });
  const checkout = await h.request({ url: "/api/v1/license/floating/checkout", licenseKey: victim.key, body: { fingerprint: "fuzz-device-1" } });
  const devices = await h.request({ url: `/api/v1/licenses/${victim.licenseId}/devices` });
  const leases = await h.request({ url: `/api/v1/licenses/${victim.licenseId}/leases` });
  const ids = [
    victim.productId,
    victim.policyId,
    victim.licenseId,
    customer.id,
    feature.id,
    field.id,
    sub.id,
    order.id,
    webhook.webhook?.id,
    apiKey.api_key?.id,
    version.id,
    devices.json?.data?.[0]?.id,
    leases.json?.data?.[0]?.id,
    act.json?.data?.device?.id,
    checkout.json?.data?.lease_token,
  ].filter((x): x is string => typeof x === "string" && x.length > 0);
  return { licenseKey: rt.key, runtimeLicenseId: rt.licenseId, ids: [...new Set(ids)] };
}

/** The fuzzer may suspend or revoke the runtime license (bulk actions with a filter); bring it back. */
async function keepRuntimeLicenseUsable(h: Harness, fx: Fixture): Promise<void> {
  const res = await h.request({ url: `/api/v1/licenses/${fx.runtimeLicenseId}` });
  const status = res.json?.data?.status;
  if (status === "active") return;
  if (status === "suspended") {
    await h.request({ method: "POST", url: `/api/v1/licenses/${fx.runtimeLicenseId}/reinstate` });
    return;
  }
  const fresh = await issueLicense(h, { max_activations: 50, max_floating_users: 5, allow_offline_activation: true });
  fx.licenseKey = fresh.key;
  fx.runtimeLicenseId = fresh.licenseId;
}

function operationsFromDoc(doc: Doc): FuzzOp[] {
  const ops: FuzzOp[] = [];
  for (const [key, { path, method, op }] of operationsOf(doc)) {
    const params = (op.parameters ?? []) as Doc[];
    let body: Record<string, Doc> | null = null;
    const schema = op.requestBody?.content?.["application/json"]?.schema;
    if (schema) {
      const resolved = resolveSchema(doc, schema);
      const fields: Record<string, Doc> = { ...(resolved.properties ?? {}) };
      for (const alt of [...(resolved.anyOf ?? []), ...(resolved.oneOf ?? [])]) Object.assign(fields, resolveSchema(doc, alt).properties ?? {});
      body = fields;
    }
    ops.push({
      key,
      method: method.toUpperCase() as Method,
      path,
      surface: op["x-required-scopes"] ? "management" : path.startsWith("/api/v1/license/") ? "runtime" : "system",
      pathParams: [...path.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]!),
      query: params.filter((p) => p.in === "query").map((p) => ({ name: p.name, schema: resolveSchema(doc, p.schema) })),
      body,
    });
  }
  const extra: FuzzOp[] = [
    { key: "GET /api/v1/openapi.json", method: "GET", path: "/api/v1/openapi.json", surface: "system", pathParams: [], query: [], body: null },
    { key: "unknown /{a}", method: "GET", path: "/{a}", surface: "unknown", pathParams: ["a"], query: [], body: null },
    { key: "unknown /api/v1/{a}/{b}", method: "POST", path: "/api/v1/{a}/{b}", surface: "unknown", pathParams: ["a", "b"], query: [], body: { name: {} } },
    { key: "unknown /api/v1/license/{a}", method: "POST", path: "/api/v1/license/{a}", surface: "runtime", pathParams: ["a"], query: [], body: { fingerprint: { type: "string" } } },
  ];
  return [...ops, ...extra];
}

// ---------------------------------------------------------------- the tests

let totalRequests = 0;

function rawExchange(base: string, bytes: string | Buffer, waitMs: number): Promise<{ text: string; closed: boolean; ms: number }> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(Number(u.port), u.hostname);
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (c) => {
      text += c.toString("utf8");
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

/** Status, headers and body of a raw HTTP/1.1 answer. */
function parseRaw(text: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n") };
}

/**
 * The fuzz suites of one engine. Each engine has its own test file (fuzz-sqlite.test.ts,
 * fuzz-postgres.test.ts) so that each gets the runner's per-file time limit on a busy machine.
 */
export function fuzzSuites(engine: TestEngine): void {
  describe(`hostile input: fuzzing every route [${engine}]`, () => {
    let h: Harness;
    let base = "";
    let fx: Fixture;
    let ops: FuzzOp[] = [];

    before(async () => {
      h = await startHarness(engine);
      const doc: Doc = (await h.request({ url: "/api/v1/openapi.json", token: null })).json;
      ops = operationsFromDoc(doc);
      fx = await setUp(h);
      base = await listen(h);
    });
    after(async () => h?.close());

    it("walks every operation of the served document, the system routes and unknown paths", () => {
      const keys = new Set(ops.map((o) => o.key));
      for (const k of ["GET /health", "GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/system/public-keys", "GET /api/v1/openapi.json", "POST /api/v1/license/activate"]) {
        assert.ok(keys.has(k), `missing ${k}`);
      }
      assert.ok(ops.filter((o) => o.surface === "management").length >= 81, "every management operation");
      assert.ok(ops.filter((o) => o.body).length >= 35, "every operation with a body");
    });

    it(`${RUNS_PER_ENGINE} generated requests: never a 5xx, always the envelope (seed ${SEED})`, async () => {
      const started = Date.now();
      let runs = 0;
      let overHttp = 0;
      const statuses = new Map<number, number>();
      const perOp = new Map<string, number>();
      const arb = requestArb(ops, fx.ids);
      await fc.assert(
        fc.asyncProperty(arb, async (generated) => {
          runs++;
          if (runs % 400 === 0) await keepRuntimeLicenseUsable(h, fx);
          const r: FuzzRequest = { ...generated, headers: { ...generated.headers } };
          // A key typed sloppily: lower case, O for 0 (D9 reads both back).
          if (r.headers.authorization) r.headers.authorization = r.headers.authorization.replace(KEY, fx.licenseKey).replace(TYPED_KEY, fx.licenseKey.toLowerCase().replace(/0/g, "o"));
          let res: Answer;
          if (r.overHttp) {
            overHttp++;
            res = await sendHttp(base, r);
          } else res = await sendInject(h, r);
          totalRequests++;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          perOp.set(r.op.key, (perOp.get(r.op.key) ?? 0) + 1);
          const problem = problemOf(res, r.sqlFilter);
          if (problem) throw new Error(`${problem}: ${describeRequest(r, res)}`);
        }),
        { seed: SEED, numRuns: RUNS_PER_ENGINE },
      );
      const seconds = (Date.now() - started) / 1000;
      const byStatus = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(" ");
      console.log(
        `[fuzz ${engine}] seed=${SEED} requests=${runs} (over real HTTP ${overHttp}) operations=${perOp.size}/${ops.length} in ${seconds.toFixed(1)} s; statuses ${byStatus}`,
      );
      assert.equal(runs, RUNS_PER_ENGINE);
      assert.ok(perOp.size >= ops.length - 2, `only ${perOp.size} of ${ops.length} operations were fuzzed`);
      assert.ok((statuses.get(200) ?? 0) + (statuses.get(201) ?? 0) > runs / 50, "some requests got through to a success");
    });

    it("a SQL-looking filter value is just a value: an empty list, not everything", async () => {
      const sql = encodeURIComponent("' OR 1=1 --");
      const urls = [
        `/api/v1/events?event_type=${sql}`,
        `/api/v1/events?resource_id=${sql}`,
        `/api/v1/events?resource_type=${sql}`,
        `/api/v1/licenses?product_id=${sql}`,
        `/api/v1/licenses?customer_id=${encodeURIComponent("x' OR '1'='1")}`,
        `/api/v1/activities?license_id=${sql}`,
        `/api/v1/activities?feature_code=${sql}`,
        `/api/v1/reports/usage-ledger?feature_code=${sql}`,
      ];
      const everything = await h.request({ url: "/api/v1/events?limit=100" });
      assert.ok(everything.json.data.length > 0, "the feed has events to leak");
      for (const url of urls) {
        const res = await h.request({ url });
        totalRequests++;
        assert.ok(res.status === 200 || res.status === 400, `${url} → ${res.status} ${res.text.slice(0, 200)}`);
        if (res.status === 200) assert.deepEqual(res.json.data, [], url);
        else assert.equal(res.json.error.code, "INVALID_QUERY", url);
      }
      const events = await h.request({ url: `/api/v1/events?event_type=${sql}` });
      assert.equal(events.status, 200);
      assert.deepEqual(events.json.data, []);
    });

    it("10,000 levels of nesting → 400 INVALID_JSON, not a stack overflow (inject and real HTTP)", async () => {
      const bodies = ["[".repeat(10_000), `${"[".repeat(10_000)}${"]".repeat(10_000)}`, `{"name":"n","code":"deep","metadata":{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`, `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`];
      for (const payload of bodies) {
        for (const url of ["/api/v1/products", "/api/v1/license/validate"]) {
          const headers = { "content-type": "application/json", authorization: url.includes("/license/") ? `License ${fx.licenseKey}` : `Bearer ${ADMIN_TOKEN}` };
          const viaInject = await sendInject(h, { method: "POST", url, headers, payload });
          const viaHttp = await sendHttp(base, { method: "POST", url, headers, payload });
          totalRequests += 2;
          for (const res of [viaInject, viaHttp]) {
            assert.equal(res.status, 400, `${url} ${payload.slice(0, 40)}… → ${res.status} ${res.body.slice(0, 200)}`);
            assert.equal(JSON.parse(res.body).error.code, "INVALID_JSON");
            assert.equal(problemOf(res, false), null);
          }
        }
      }
    });

    it("an oversized body over real HTTP → 413 PAYLOAD_TOO_LARGE envelope (with and without Content-Length)", async () => {
      const big = JSON.stringify({ name: "x".repeat(h.config.bodyLimitBytes + 10), code: "big" });
      for (const url of ["/api/v1/products", "/api/v1/license/activate"]) {
        const auth = url.includes("/license/") ? `License ${fx.licenseKey}` : `Bearer ${ADMIN_TOKEN}`;
        for (const chunked of [false, true]) {
          const headers: Record<string, string> = { "content-type": "application/json", authorization: auth };
          if (chunked) headers["transfer-encoding"] = "chunked";
          const res = await sendHttp(base, { method: "POST", url, headers, payload: big });
          totalRequests++;
          assert.equal(res.status, 413, `${url} chunked=${chunked} → ${res.status} ${res.body.slice(0, 200)}`);
          assert.equal(JSON.parse(res.body).error.code, "PAYLOAD_TOO_LARGE");
          assert.equal(problemOf(res, false), null);
        }
      }
    });

    it("headers over Node's limit and a malformed request line → the envelope, not Fastify's own body", async () => {
      const overflow = await rawExchange(base, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`, 5000);
      const garbage = await rawExchange(base, "THIS IS NOT HTTP\r\n\r\n", 5000);
      const badLength = await rawExchange(base, "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 5000);
      totalRequests += 3;
      for (const [name, ex] of [
        ["header overflow", overflow],
        ["garbage", garbage],
        ["bad content-length", badLength],
      ] as const) {
        const raw = parseRaw(ex.text);
        assert.equal(raw.status, 400, `${name}: ${ex.text.slice(0, 300)}`);
        assert.match(raw.headers["content-type"] ?? "", /^application\/json/, name);
        const json = JSON.parse(raw.body);
        assert.equal(json.error.code, "BAD_REQUEST", name);
        assert.equal(json.meta.request_id, raw.headers["x-request-id"], name);
        assert.ok(ex.closed, `${name}: the connection is closed`);
      }
    });
  });

  describe(`hostile input: a stalled body times out [${engine}]`, () => {
    let h: Harness;
    let base = "";
    before(async () => {
      h = await startHarness(engine, { env: { LICENSEKIT_REQUEST_TIMEOUT_MS: String(TEST_REQUEST_TIMEOUT_MS) } });
      base = await listen(h);
    });
    after(async () => h?.close());

    it(`headers and part of a body, then silence → 400 BAD_REQUEST envelope and a closed connection within the request timeout (${TEST_REQUEST_TIMEOUT_MS} ms)`, async () => {
      assert.equal(h.config.requestTimeoutMs, TEST_REQUEST_TIMEOUT_MS);
      const head = `POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`;
      const stalled = await rawExchange(base, head, 10_000);
      // headers only, body never started
      const noBody = await rawExchange(base, `PATCH /api/v1/products/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n`, 10_000);
      // headers never finished
      const slowHeaders = await rawExchange(base, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 10_000);
      totalRequests += 3;
      for (const [name, ex] of [
        ["stalled body", stalled],
        ["no body", noBody],
        ["unfinished headers", slowHeaders],
      ] as const) {
        assert.ok(ex.closed, `${name}: the server closed the connection (after ${ex.ms} ms)`);
        assert.ok(ex.ms >= TEST_REQUEST_TIMEOUT_MS - 50, `${name}: closed after ${ex.ms} ms, before the timeout`);
        assert.ok(ex.ms < TEST_REQUEST_TIMEOUT_MS * 2 + 1500, `${name}: closed only after ${ex.ms} ms`);
        if (ex.text) {
          const raw = parseRaw(ex.text);
          assert.equal(raw.status, 400, `${name}: ${ex.text.slice(0, 300)}`);
          const json = JSON.parse(raw.body);
          assert.equal(json.error.code, "BAD_REQUEST", name);
          assert.match(json.error.detail, /not received within/, name);
          assert.equal(json.meta.request_id, raw.headers["x-request-id"], name);
        }
      }
      // the server still answers afterwards
      const ok = await sendHttp(base, { method: "GET", url: "/health", headers: {} });
      assert.equal(ok.status, 200);
    });
  });

  describe(`hostile input: totals [${engine}]`, () => {
    it(`this engine's share of the ${TOTAL_RUNS} requests across ${ENGINES.join(" + ")} was run`, () => {
      console.log(`[fuzz ${engine}] seed=${SEED} engines=${ENGINES.join("+")} requests on this engine=${totalRequests}`);
      assert.ok(totalRequests >= RUNS_PER_ENGINE, `only ${totalRequests} requests`);
    });
  });
}
