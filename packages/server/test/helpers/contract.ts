// The reference contract (../shared/contract/openapi.yaml), read — never copied — to check that
// answers match its schemas.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsPlugin from "ajv-formats";
import { parse } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
export const CONTRACT_PATH = process.env.LICENSEKIT_CONTRACT_PATH ?? path.resolve(here, "../../../../../shared/contract/openapi.yaml");

// biome-ignore lint/suspicious/noExplicitAny: the YAML document is walked dynamically
export type Doc = any;

let cached: Doc | null = null;
export function contract(): Doc {
  if (!cached) {
    if (!fs.existsSync(CONTRACT_PATH)) {
      throw new Error(`reference contract not found at ${CONTRACT_PATH}; clone next to ../shared or set LICENSEKIT_CONTRACT_PATH`);
    }
    cached = parse(fs.readFileSync(CONTRACT_PATH, "utf8"));
  }
  return cached;
}

let ajv: Ajv2020 | null = null;
function validatorFor(name: string) {
  if (!ajv) {
    ajv = new Ajv2020({ strict: false, allErrors: true });
    const plugin = addFormatsPlugin as unknown as { default?: (a: Ajv2020) => Ajv2020 } & ((a: Ajv2020) => Ajv2020);
    (plugin.default ?? plugin)(ajv);
    ajv.addSchema({ $id: "contract", components: contract().components }, "contract");
  }
  const v = ajv.getSchema(`contract#/components/schemas/${name}`);
  if (!v) throw new Error(`no schema ${name} in the contract`);
  return v;
}

/** Throws with the validation errors when `value` does not match contract schema `name`. */
export function assertContract(name: string, value: unknown): void {
  const v = validatorFor(name);
  if (!v(value)) throw new Error(`response does not match contract ${name}: ${JSON.stringify(v.errors)}\n${JSON.stringify(value)}`);
}

/** Validates against an inline response schema of an operation (e.g. list responses). */
export function assertOperationResponse(pathKey: string, method: string, status: string, value: unknown): void {
  const op = contract().paths[pathKey]?.[method];
  const schema = op?.responses?.[status]?.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`no ${status} JSON schema for ${method} ${pathKey}`);
  if (!ajv) validatorFor("ResponseMeta");
  const resolved = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"contract#/components/'));
  const v = ajv!.compile(resolved);
  if (!v(value)) throw new Error(`response does not match ${method} ${pathKey} ${status}: ${JSON.stringify(v.errors)}`);
}
