// Canonical JSON for frozen report snapshots (NOTES §20): one byte sequence per value, so the
// snapshot's digest identifies its content and a re-serialisation of the stored text reproduces it.
//
// Rules: object keys sorted recursively by UTF-16 code unit (JavaScript's default sort, the order
// RFC 8785 uses too); no whitespace; strings and numbers written exactly as JSON.stringify writes
// them (so -0 is 0, 1e21 is 1e+21); a property whose value is undefined is left out, as
// JSON.stringify does. Values JSON cannot hold (NaN, Infinity, bigint, functions, symbols, undefined
// array items) throw instead of being written as something else.
import { createHash } from "node:crypto";

export function canonicalJson(value: unknown): string {
  return write(value, "$");
}

function write(value: unknown, where: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${where} is ${value}, which JSON cannot hold`);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        return `[${value
          .map((item, i) => {
            if (item === undefined) throw new TypeError(`canonical JSON: ${where}[${i}] is undefined`);
            return write(item, `${where}[${i}]`);
          })
          .join(",")}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError(`canonical JSON: ${where} is not a plain object`);
      const obj = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(obj).sort()) {
        const v = obj[key];
        if (v === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${write(v, `${where}.${key}`)}`);
      }
      return `{${parts.join(",")}}`;
    }
    default:
      throw new TypeError(`canonical JSON: ${where} is a ${typeof value}, which JSON cannot hold`);
  }
}

/** Lowercase hex SHA-256 of bytes or of a string's UTF-8 bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The digest of a value: hex SHA-256 of the UTF-8 bytes of its canonical JSON. */
export function canonicalDigest(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
