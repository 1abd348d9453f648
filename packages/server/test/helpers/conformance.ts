// Compares the OpenAPI document this server generates with the reference contract, operation by
// operation. Two kinds of findings:
//  - breaks: anything that would break a client of the contract (a missing operation, another
//    operationId or scope, a missing status, request field, required field or enum value, a response
//    enum value the client does not know). The conformance test requires none.
//  - extensions: what we add beyond the contract (operations, statuses, request and response fields,
//    enum values a request may use). Each must be listed in docs/api-extensions.md.
import type { Doc } from "./contract.js";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

export interface Findings {
  breaks: string[];
  extensions: string[];
}

export interface Operation {
  path: string;
  method: string;
  op: Doc;
}

export function operationsOf(doc: Doc): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [p, item] of Object.entries(doc.paths as Record<string, Doc>)) {
    for (const m of METHODS) if (item[m]) out.set(`${m.toUpperCase()} ${p}`, { path: p, method: m, op: item[m] });
  }
  return out;
}

/** Follows $ref and merges allOf into one object schema. */
export function resolveSchema(doc: Doc, schema: Doc): Doc {
  if (!schema || typeof schema !== "object") return schema;
  if (schema.$ref) {
    const target = (schema.$ref as string)
      .replace(/^#\//, "")
      .split("/")
      .reduce((o: Doc, k: string) => o?.[k], doc);
    return resolveSchema(doc, target);
  }
  if (schema.allOf) {
    const parts = schema.allOf.map((s: Doc) => resolveSchema(doc, s));
    return {
      type: "object",
      additionalProperties: parts.every((p: Doc) => p.additionalProperties === false) ? false : undefined,
      properties: Object.assign({}, ...parts.map((p: Doc) => p.properties ?? {})),
      required: parts.flatMap((p: Doc) => p.required ?? []),
    };
  }
  return schema;
}

function enumOf(doc: Doc, schema: Doc): string[] | undefined {
  const s = resolveSchema(doc, schema);
  if (Array.isArray(s?.enum)) return s.enum.map(String);
  if (Array.isArray(s?.anyOf) && s.anyOf.every((x: Doc) => "const" in x)) return s.anyOf.map((x: Doc) => String(x.const));
  return undefined;
}

function isObject(s: Doc): boolean {
  return s && (s.type === "object" || (Array.isArray(s.type) && s.type.includes("object")) || s.properties !== undefined);
}

function isArray(s: Doc): boolean {
  return s && (s.type === "array" || (Array.isArray(s.type) && s.type.includes("array")));
}

/** Walks a contract schema and ours side by side. `where` names the position, e.g. `request.license.id`. */
function compareSchemas(
  kind: "request" | "response",
  where: string,
  ref: Doc,
  theirsRaw: Doc,
  ours: Doc,
  oursDoc: Doc,
  add: (finding: "break" | "extension", text: string) => void,
): void {
  const theirs = resolveSchema(ref, theirsRaw);
  const mine = resolveSchema(oursDoc, ours);
  if (!theirs || !mine) return;
  const theirEnum = enumOf(ref, theirs);
  const myEnum = enumOf(oursDoc, mine);
  if (theirEnum && myEnum) {
    for (const v of theirEnum) if (!myEnum.includes(v) && kind === "request") add("break", `${where} does not accept enum value ${v}`);
    for (const v of myEnum) {
      if (theirEnum.includes(v)) continue;
      if (kind === "response") add("break", `${where} may answer enum value ${v} the contract does not list`);
      else add("extension", `${where} enum ${v}`);
    }
  }
  if (isArray(theirs) && isArray(mine)) {
    compareSchemas(kind, `${where}[]`, ref, theirs.items, mine.items, oursDoc, add);
    return;
  }
  if (!isObject(theirs) || !theirs.properties) return;
  const myProps = (mine.properties ?? {}) as Record<string, Doc>;
  const myRequired = new Set<string>(mine.required ?? []);
  const theirRequired = new Set<string>(theirs.required ?? []);
  for (const [name, sub] of Object.entries(theirs.properties as Record<string, Doc>)) {
    const at = `${where}.${name}`;
    if (!(name in myProps)) {
      add("break", `${at} is missing`);
      continue;
    }
    compareSchemas(kind, at, ref, sub, myProps[name], oursDoc, add);
  }
  for (const name of Object.keys(myProps)) {
    if (!(name in theirs.properties)) add("extension", `${where}.${name}`);
  }
  if (kind === "request") {
    for (const r of theirRequired) if (!myRequired.has(r)) add("break", `${where}.${r} is required by the contract but optional here`);
    for (const r of myRequired) if (!theirRequired.has(r) && r in theirs.properties) add("break", `${where}.${r} is required here but optional in the contract`);
    if (theirs.additionalProperties === false && mine.additionalProperties !== false) add("break", `${where} accepts unknown fields`);
  } else {
    // Every field the contract promises must always be sent; sending more fields always is harmless.
    for (const r of theirRequired) if (!myRequired.has(r)) add("break", `${where}.${r} is required by the contract but may be absent here`);
  }
}

function jsonBody(op: Doc, status?: string): Doc {
  const holder = status ? op.responses?.[status] : op.requestBody;
  return holder?.content?.["application/json"]?.schema;
}

function headerParam(op: Doc, doc: Doc, name: string): Doc | undefined {
  return (op.parameters ?? []).map((p: Doc) => resolveSchema(doc, p)).find((p: Doc) => p.in === "header" && p.name.toLowerCase() === name);
}

function queryParams(op: Doc, doc: Doc): Map<string, Doc> {
  const out = new Map<string, Doc>();
  for (const p of (op.parameters ?? []).map((x: Doc) => resolveSchema(doc, x))) if (p.in === "query") out.set(p.name, p);
  return out;
}

export function compareDocuments(ref: Doc, ours: Doc): Findings {
  const breaks: string[] = [];
  const extensions: string[] = [];
  const theirOps = operationsOf(ref);
  const myOps = operationsOf(ours);
  for (const [key, t] of theirOps) {
    const m = myOps.get(key);
    const id = t.op.operationId;
    if (!m) {
      breaks.push(`${key} (${id}) is not served`);
      continue;
    }
    const add = (finding: "break" | "extension", text: string) => (finding === "break" ? breaks : extensions).push(`${id} ${text}`);
    if (m.op.operationId !== id) add("break", `has operationId ${m.op.operationId}`);
    if (JSON.stringify(m.op["x-required-scopes"] ?? null) !== JSON.stringify(t.op["x-required-scopes"] ?? null)) {
      add("break", `x-required-scopes ${JSON.stringify(m.op["x-required-scopes"])} instead of ${JSON.stringify(t.op["x-required-scopes"])}`);
    }
    const theirStatuses = Object.keys(t.op.responses ?? {});
    const myStatuses = Object.keys(m.op.responses ?? {});
    for (const s of theirStatuses) if (!myStatuses.includes(s)) add("break", `does not declare status ${s}`);
    for (const s of myStatuses) if (!theirStatuses.includes(s)) add("extension", `status ${s}`);
    const theirIdem = headerParam(t.op, ref, "idempotency-key");
    const myIdem = headerParam(m.op, ours, "idempotency-key");
    if (theirIdem?.required && !myIdem?.required) add("break", "does not require Idempotency-Key");
    if (theirIdem && !myIdem) add("break", "does not accept Idempotency-Key");
    if (myIdem && !theirIdem) add("extension", `accepts Idempotency-Key${myIdem.required ? " (required)" : ""}`);

    const theirQuery = queryParams(t.op, ref);
    const myQuery = queryParams(m.op, ours);
    for (const [name, p] of theirQuery) {
      const mine = myQuery.get(name);
      if (!mine) add("break", `query ${name} is not accepted`);
      else compareSchemas("request", `query ${name}`, ref, p.schema, mine.schema, ours, add);
    }
    for (const name of myQuery.keys()) if (!theirQuery.has(name)) add("extension", `query ${name}`);

    const theirReq = jsonBody(t.op);
    const myReq = jsonBody(m.op);
    if (theirReq && !myReq) add("break", "takes no request body");
    else if (!theirReq && myReq) add("extension", "request body");
    else if (theirReq) compareSchemas("request", "request", ref, theirReq, myReq, ours, add);

    for (const s of theirStatuses.filter((x) => x.startsWith("2"))) {
      const theirRes = jsonBody(t.op, s);
      const myRes = jsonBody(m.op, s);
      if (theirRes && !myRes) add("break", `answers ${s} without the contract's JSON body`);
      else if (theirRes) compareSchemas("response", `response ${s}`, ref, theirRes, myRes, ours, add);
    }
  }
  for (const [key, m] of myOps) {
    if (!theirOps.has(key)) extensions.push(`${key} (${m.op.operationId})`);
  }
  return { breaks, extensions };
}

/** The extension entries of docs/api-extensions.md: the first backticked cell of each table row. */
export function documentedExtensions(markdown: string): string[] {
  const out: string[] = [];
  for (const line of markdown.split("\n")) {
    const m = /^\| `([^`]+)` \|/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}
