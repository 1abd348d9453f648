// Custom fields (NOTES §14): what a definition may declare, and which typed value an upsert may set.
// Pure rules; every refusal is a 422 VALIDATION_ERROR naming the field.
import { ApiError } from "../http/errors.js";

export const CUSTOM_FIELD_RESOURCE_TYPES = ["license", "customer"] as const;
export type CustomFieldResourceType = (typeof CUSTOM_FIELD_RESOURCE_TYPES)[number];

export const CUSTOM_FIELD_VALUE_TYPES = ["string", "integer", "boolean", "datetime", "enum"] as const;
export type CustomFieldValueType = (typeof CUSTOM_FIELD_VALUE_TYPES)[number];

/** The request field (and storage column) that carries each value type. */
export const VALUE_FIELD = {
  string: "string_value",
  integer: "integer_value",
  boolean: "boolean_value",
  datetime: "datetime_value",
  enum: "enum_value",
} as const satisfies Record<CustomFieldValueType, string>;
export type ValueField = (typeof VALUE_FIELD)[CustomFieldValueType];
const VALUE_FIELDS = Object.values(VALUE_FIELD) as ValueField[];

export const MAX_STRING_VALUE_LENGTH = 10_000;

/**
 * The enum options a definition of `valueType` keeps: required, non-empty and without duplicates for
 * `enum`; refused (unless empty) for every other type, which stores `[]`.
 */
export function checkEnumOptions(valueType: CustomFieldValueType, options: string[] | undefined): string[] {
  if (valueType !== "enum") {
    if (options !== undefined && options.length > 0) {
      throw new ApiError("VALIDATION_ERROR", `field enum_options: allowed only when value_type is enum (this field is ${valueType})`);
    }
    return [];
  }
  if (options === undefined || options.length === 0) {
    throw new ApiError("VALIDATION_ERROR", "field enum_options: an enum field needs at least one option");
  }
  const seen = new Set<string>();
  for (const o of options) {
    if (seen.has(o)) throw new ApiError("VALIDATION_ERROR", `field enum_options: option "${o}" is listed twice`);
    seen.add(o);
  }
  return options;
}

export interface DefinitionRule {
  code: string;
  value_type: CustomFieldValueType;
  is_required: boolean;
  enum_options: string[];
}

export interface ValueUpsert {
  clear?: boolean;
  string_value?: string;
  integer_value?: number;
  boolean_value?: boolean;
  datetime_value?: string;
  enum_value?: string;
}

/** What an upsert does: clear the value, or store one column (datetime as epoch ms, boolean as 0/1). */
export type ValueDecision = { kind: "clear" } | { kind: "set"; field: ValueField; stored: string | number };

/** Exactly one typed value matching the definition's value_type, or `clear: true` (not on a required field). */
export function decideValue(def: DefinitionRule, body: ValueUpsert): ValueDecision {
  const sent = VALUE_FIELDS.filter((f) => body[f] !== undefined);
  const expected = VALUE_FIELD[def.value_type];
  if (body.clear === true) {
    if (sent.length > 0) throw new ApiError("VALIDATION_ERROR", `field clear: cannot be combined with ${sent.join(", ")}; send either one typed value or clear: true`);
    if (def.is_required) {
      throw new ApiError("VALIDATION_ERROR", `field clear: a required custom field cannot be cleared (${def.code}); set is_required to false on the definition first`);
    }
    return { kind: "clear" };
  }
  if (sent.length === 0) {
    throw new ApiError("VALIDATION_ERROR", `field ${expected}: send exactly one typed value (${expected} for this ${def.value_type} field) or clear: true`);
  }
  if (sent.length > 1) throw new ApiError("VALIDATION_ERROR", `field ${sent[1]}: send exactly one typed value, not ${sent.join(" and ")}`);
  const field = sent[0]!;
  if (field !== expected) {
    throw new ApiError("VALIDATION_ERROR", `field ${field}: custom field ${def.code} is of type ${def.value_type}; send ${expected}`);
  }
  switch (def.value_type) {
    case "string": {
      const v = body.string_value!;
      if (v.length > MAX_STRING_VALUE_LENGTH) throw new ApiError("VALIDATION_ERROR", `field string_value: must be at most ${MAX_STRING_VALUE_LENGTH} characters`);
      return { kind: "set", field, stored: v };
    }
    case "integer": {
      const v = body.integer_value!;
      if (!Number.isSafeInteger(v)) {
        throw new ApiError("VALIDATION_ERROR", `field integer_value: must be an integer between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`);
      }
      return { kind: "set", field, stored: v };
    }
    case "boolean":
      return { kind: "set", field, stored: body.boolean_value ? 1 : 0 };
    case "datetime": {
      const ms = Date.parse(body.datetime_value!);
      if (Number.isNaN(ms)) throw new ApiError("VALIDATION_ERROR", "field datetime_value: must be an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)");
      return { kind: "set", field, stored: ms };
    }
    case "enum": {
      const v = body.enum_value!;
      if (!def.enum_options.includes(v)) throw new ApiError("VALIDATION_ERROR", `field enum_value: must be one of ${def.enum_options.join(", ")}`);
      return { kind: "set", field, stored: v };
    }
  }
}
