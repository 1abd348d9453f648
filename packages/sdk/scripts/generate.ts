// Generates the SDK's contract files from the server's own OpenAPI document, so the SDK and the
// server cannot drift (test/generated.test.ts regenerates in memory and compares):
//   openapi.json                 the document, as GET /api/v1/openapi.json serves it
//   src/generated/openapi.ts     `paths`, `components`, `operations` types (openapi-typescript)
//   src/generated/operations.ts  the operations table the clients are built from
// Run: `npm run generate -w @licensekit/sdk` (starts the server app in-process on a temp SQLite file).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import openapiTS, { astToString, type OpenAPI3 } from "openapi-typescript";

export const SDK_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Relative to packages/sdk. */
export const GENERATED_FILES = ["openapi.json", "src/generated/openapi.ts", "src/generated/operations.ts"] as const;
export type GeneratedFile = (typeof GENERATED_FILES)[number];

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

interface Json {
  [key: string]: unknown;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface OperationEntry {
  operationId: string;
  method: string;
  path: string;
  surface: "management" | "runtime" | "system";
  idempotency: "required" | "optional" | "none";
  scopes: string[];
  /** Statuses whose documented body is the operation's answer rather than an error envelope (2xx, and e.g. readyz's 503). */
  success: number[];
  /**
   * How the client reads a success answer: `json` (parsed; the default), or `bytes` when a success
   * status declares a media type other than JSON (a download such as `downloadReportExport`, which
   * answers PDF, CSV or JSON bytes): the method then resolves to the raw body as a Uint8Array.
   */
  response: "json" | "bytes";
}

/** True for `application/json` and the `+json` types; the client reads bodies of these as JSON. */
function isJsonMediaType(mediaType: string): boolean {
  return /\bjson\b/i.test(mediaType);
}

/** The media types a response object declares under `content`. */
function mediaTypesOf(resp: unknown): string[] {
  return isObject(resp) && isObject(resp.content) ? Object.keys(resp.content) : [];
}

/** True when a response schema is the error envelope `{error, meta}`. */
function isErrorEnvelopeSchema(schema: unknown): boolean {
  if (!isObject(schema)) return false;
  const required = Array.isArray(schema.required) ? schema.required : [];
  const props = isObject(schema.properties) ? schema.properties : {};
  return required.includes("error") || ("error" in props && !("data" in props));
}

export function extractOperations(doc: Json): OperationEntry[] {
  const out: OperationEntry[] = [];
  const paths = isObject(doc.paths) ? doc.paths : {};
  for (const [p, item] of Object.entries(paths)) {
    if (!isObject(item)) continue;
    for (const m of HTTP_METHODS) {
      const op = item[m];
      if (!isObject(op)) continue;
      const operationId = op.operationId;
      if (typeof operationId !== "string") throw new Error(`${m.toUpperCase()} ${p} has no operationId`);
      const scopesRaw = op["x-required-scopes"];
      const scopes = Array.isArray(scopesRaw) ? scopesRaw.filter((s): s is string => typeof s === "string") : [];
      const params = Array.isArray(op.parameters) ? op.parameters.filter(isObject) : [];
      const idem = params.find((x) => x.in === "header" && typeof x.name === "string" && x.name.toLowerCase() === "idempotency-key");
      const idempotency: OperationEntry["idempotency"] = idem ? (idem.required === true ? "required" : "optional") : "none";
      const surface: OperationEntry["surface"] = p.startsWith("/api/v1/license/")
        ? "runtime"
        : Array.isArray(scopesRaw)
          ? "management"
          : "system";
      const success: number[] = [];
      const responses = isObject(op.responses) ? op.responses : {};
      for (const [code, resp] of Object.entries(responses)) {
        const status = Number(code);
        if (!Number.isInteger(status)) continue;
        if (status >= 200 && status < 300) {
          success.push(status);
          continue;
        }
        const content = isObject(resp) && isObject(resp.content) ? resp.content : {};
        const json = isObject(content["application/json"]) ? content["application/json"] : undefined;
        const schema = json?.schema;
        const props = isObject(schema) && isObject(schema.properties) ? schema.properties : {};
        if (schema && !isErrorEnvelopeSchema(schema) && "data" in props) success.push(status);
      }
      success.sort((a, b) => a - b);
      const binary = success.some((status) => mediaTypesOf(responses[String(status)]).some((t) => !isJsonMediaType(t)));
      const response: OperationEntry["response"] = binary ? "bytes" : "json";
      out.push({ operationId, method: m.toUpperCase(), path: p, surface, idempotency, scopes, success, response });
    }
  }
  const seen = new Set<string>();
  for (const o of out) {
    if (seen.has(o.operationId)) throw new Error(`duplicate operationId ${o.operationId}`);
    seen.add(o.operationId);
  }
  return out;
}

export function renderOperations(doc: Json): string {
  const ops = extractOperations(doc);
  const lines: string[] = [];
  lines.push("// Generated by scripts/generate.ts from the server's OpenAPI document. Do not edit by hand:");
  lines.push("// run `npm run generate -w @licensekit/sdk`. test/generated.test.ts fails when this file drifts.");
  lines.push("");
  lines.push("/** Every operation of the API: method, path template, auth surface, Idempotency-Key rule, required scopes");
  lines.push(" * (`x-required-scopes`; `admin` satisfies all), the statuses whose body is the answer (not an error) and how");
  lines.push(" * that answer is read: `json` (parsed) or `bytes` (a download: the raw body as a Uint8Array). */");
  lines.push("export const OPERATIONS = {");
  for (const o of ops) {
    lines.push(
      `  ${o.operationId}: { method: ${JSON.stringify(o.method)}, path: ${JSON.stringify(o.path)}, surface: ${JSON.stringify(o.surface)}, ` +
        `idempotency: ${JSON.stringify(o.idempotency)}, scopes: [${o.scopes.map((s) => JSON.stringify(s)).join(", ")}], success: [${o.success.join(", ")}], response: ${JSON.stringify(o.response)} },`,
    );
  }
  lines.push("} as const;");
  lines.push("");
  lines.push("export type Operations = typeof OPERATIONS;");
  lines.push("export type OperationId = keyof Operations;");
  lines.push('export type Surface = "management" | "runtime" | "system";');
  lines.push("/** The operationIds of one surface. */");
  lines.push("export type SurfaceOperationId<S extends Surface> = { [K in OperationId]: Operations[K][\"surface\"] extends S ? K : never }[OperationId];");
  lines.push("");
  return lines.join("\n");
}

export function renderOpenApiJson(doc: Json): string {
  // Compact, as served (indented it would exceed Biome's 1 MiB file limit); src/generated/openapi.ts is the readable diff.
  return `${JSON.stringify(doc)}\n`;
}

export async function renderOpenApiTypes(doc: Json): Promise<string> {
  // structuredClone: openapi-typescript annotates the object it is given.
  const ast = await openapiTS(structuredClone(doc) as unknown as OpenAPI3, { silent: true });
  const body = astToString(ast);
  return `// Generated by scripts/generate.ts (openapi-typescript) from the server's OpenAPI document. Do not edit by hand.\n${body}`;
}

/** Every generated file's content, keyed by its path relative to packages/sdk. */
export async function renderAll(doc: Json): Promise<Record<GeneratedFile, string>> {
  return {
    "openapi.json": renderOpenApiJson(doc),
    "src/generated/openapi.ts": await renderOpenApiTypes(doc),
    "src/generated/operations.ts": renderOperations(doc),
  };
}

/** Starts the server app in-process (fresh temp SQLite database) and returns its OpenAPI document. */
export async function loadServerDocument(): Promise<Json> {
  const { startHarness } = await import("../../server/test/helpers/harness.js");
  const h = await startHarness("sqlite");
  try {
    const res = await h.request({ url: "/api/v1/openapi.json", token: null });
    if (res.status !== 200 || !isObject(res.json)) throw new Error(`GET /api/v1/openapi.json answered ${res.status}`);
    return res.json;
  } finally {
    await h.close();
  }
}

async function main(): Promise<void> {
  const doc = await loadServerDocument();
  const files = await renderAll(doc);
  for (const [rel, content] of Object.entries(files)) {
    const target = path.join(SDK_DIR, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content);
    console.log(`wrote ${path.relative(process.cwd(), target)} (${content.length} bytes)`);
  }
  console.log(`${extractOperations(doc).length} operations`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
