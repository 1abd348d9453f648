// Schema validation with two Ajv instances: request bodies are checked strictly (no type coercion,
// no silent removal of unknown fields), query strings coerce "10" to 10 as usual. Failures are turned
// into D1 codes by classifyValidation().
import { Ajv, type ErrorObject } from "ajv";
import addFormatsPlugin from "ajv-formats";
import type { FastifySchemaCompiler } from "fastify";
import type { ErrorCode } from "./errors.js";

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    coerceTypes: coerce ? "array" : false,
    useDefaults: coerce,
    removeAdditional: false,
    allErrors: true,
    strict: false,
  });
  // ajv-formats is CommonJS: its default export arrives wrapped under ESM.
  const plugin = addFormatsPlugin as unknown as { default?: (a: Ajv) => Ajv } & ((a: Ajv) => Ajv);
  (plugin.default ?? plugin)(ajv);
  return ajv;
}

const bodyAjv = makeAjv(false);
const queryAjv = makeAjv(true);

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === "body" ? bodyAjv : queryAjv).compile(schema as object);

function fieldPath(e: ErrorObject): string {
  const base = e.instancePath.replace(/^\//, "").replace(/\//g, ".");
  if (e.keyword === "required") {
    const p = (e.params as { missingProperty: string }).missingProperty;
    return base ? `${base}.${p}` : p;
  }
  if (e.keyword === "additionalProperties") {
    const p = (e.params as { additionalProperty: string }).additionalProperty;
    return base ? `${base}.${p}` : p;
  }
  return base;
}

function describe(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "additionalProperties":
      return "unknown field";
    case "required":
      return "is required";
    case "type": {
      const article = (t: string) => (t === "integer" || t === "object" || t === "array" ? `an ${t}` : t === "null" ? "null" : `a ${t}`);
      return `must be ${String(params.type).split(",").map(article).join(" or ")}`;
    }
    case "enum":
      return `must be one of ${(params.allowedValues as unknown[]).join(", ")}`;
    case "format":
      return params.format === "date-time" ? "must be an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)" : `must be a valid ${params.format}`;
    case "minimum":
      return `must be >= ${params.limit}`;
    case "maximum":
      return `must be <= ${params.limit}`;
    case "minLength":
      return params.limit === 1 ? "must not be empty" : `must be at least ${params.limit} characters`;
    case "maxLength":
      return `must be at most ${params.limit} characters`;
    case "minItems":
      return `must have at least ${params.limit} items`;
    case "maxItems":
      return `must have at most ${params.limit} items`;
    case "pattern":
      return params.pattern === "^[A-Za-z0-9][A-Za-z0-9._:-]*$"
        ? "must start with a letter or digit and use only letters, digits, '.', '_', ':' and '-'"
        : "has an invalid format";
    case "uniqueItems":
      return "must not contain duplicates";
    default:
      return e.message ?? "is invalid";
  }
}

/** Decode errors (unknown field, wrong JSON type) outrank rule errors: the body did not decode. */
const DECODE_KEYWORDS = new Set(["additionalProperties", "type"]);

export function classifyValidation(
  context: string | undefined,
  errors: ErrorObject[],
): { code: ErrorCode; detail: string } {
  const decode = errors.find((e) => DECODE_KEYWORDS.has(e.keyword));
  const first = decode ?? errors[0];
  if (!first) return { code: "BAD_REQUEST", detail: "request is invalid" };
  const field = fieldPath(first);
  if (context === "querystring" || context === "params") {
    return { code: "INVALID_QUERY", detail: `${context === "params" ? "path" : "query"} parameter ${field || "(root)"}: ${describe(first)}` };
  }
  if (context === "headers") {
    if (first.keyword === "required" && field === "idempotency-key") {
      return { code: "IDEMPOTENCY_KEY_REQUIRED", detail: "this operation requires an Idempotency-Key header" };
    }
    return { code: "BAD_REQUEST", detail: `header ${field}: ${describe(first)}` };
  }
  if (!field) {
    return { code: "INVALID_JSON", detail: first.keyword === "type" ? "body must be a JSON object" : describe(first) };
  }
  return { code: decode ? "INVALID_JSON" : "VALIDATION_ERROR", detail: `field ${field}: ${describe(first)}` };
}
