// Custom-field definitions (per product and resource type) and their typed values on licenses and
// customers (NOTES §14). A value row sets exactly one typed column, the one of its definition's type.
import type { CustomFieldResourceType, CustomFieldValueType, ValueField } from "../domain/custom-field-values.js";
import { newId } from "../ids.js";
import { type Engine, forUpdate, type Q } from "./db.js";
import { iso, parseJsonObject } from "./json.js";
import { toPage } from "./pagination.js";
import type { CustomFieldDefinitionRow as DefinitionRow, CustomFieldValueRow as ValueRow } from "./schema.js";

export interface DefinitionView {
  id: string;
  product_id: string;
  resource_type: CustomFieldResourceType;
  code: string;
  name: string;
  value_type: CustomFieldValueType;
  is_required: boolean;
  enum_options: string[];
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function enumOptionsOf(r: DefinitionRow): string[] {
  const v = JSON.parse(r.enum_options) as unknown;
  return Array.isArray(v) ? v.map(String) : [];
}

export function definitionView(r: DefinitionRow): DefinitionView {
  return {
    id: r.id,
    product_id: r.product_id,
    resource_type: r.resource_type,
    code: r.code,
    name: r.name,
    value_type: r.value_type,
    is_required: r.is_required === 1,
    enum_options: enumOptionsOf(r),
    metadata: parseJsonObject(r.metadata),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

export interface DefinitionInput {
  resource_type: CustomFieldResourceType;
  code: string;
  name: string;
  value_type: CustomFieldValueType;
  is_required: boolean;
  enum_options: string[];
  metadata: Record<string, unknown>;
}

export async function insertDefinition(q: Q, productId: string, input: DefinitionInput, now: number): Promise<DefinitionRow> {
  const row: DefinitionRow = {
    id: newId("fld", now),
    product_id: productId,
    resource_type: input.resource_type,
    code: input.code,
    name: input.name,
    value_type: input.value_type,
    is_required: input.is_required ? 1 : 0,
    enum_options: JSON.stringify(input.enum_options),
    metadata: JSON.stringify(input.metadata),
    created_at: now,
    updated_at: now,
  };
  await q.insertInto("custom_field_definitions").values(row).execute();
  return row;
}

export function findDefinition(q: Q, id: string): Promise<DefinitionRow | undefined> {
  return q.selectFrom("custom_field_definitions").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Row lock for a definition about to change, be deleted, or have a value written under it. */
export function lockDefinition(q: Q, engine: Engine, id: string): Promise<DefinitionRow | undefined> {
  return forUpdate(engine, q.selectFrom("custom_field_definitions").selectAll().where("id", "=", id)).executeTakeFirst();
}

export function findDefinitionByCode(q: Q, productId: string, resourceType: CustomFieldResourceType, code: string): Promise<DefinitionRow | undefined> {
  return q
    .selectFrom("custom_field_definitions")
    .selectAll()
    .where("product_id", "=", productId)
    .where("resource_type", "=", resourceType)
    .where("code", "=", code)
    .executeTakeFirst();
}

export async function listDefinitions(q: Q, productId: string, limit: number, before: string | null) {
  let qb = q.selectFrom("custom_field_definitions").selectAll().where("product_id", "=", productId).orderBy("id", "desc").limit(limit + 1);
  if (before) qb = qb.where("id", "<", before);
  return toPage(await qb.execute(), limit);
}

export interface DefinitionPatch {
  code?: string;
  name?: string;
  is_required?: boolean;
  enum_options?: string[];
  metadata?: Record<string, unknown>;
}

/** The patch fields whose value differs from the row (JSON columns compared as JSON text). */
export function changedDefinitionFields(row: DefinitionRow, patch: DefinitionPatch): (keyof DefinitionPatch)[] {
  const changed: (keyof DefinitionPatch)[] = [];
  if (patch.code !== undefined && patch.code !== row.code) changed.push("code");
  if (patch.name !== undefined && patch.name !== row.name) changed.push("name");
  if (patch.is_required !== undefined && (patch.is_required ? 1 : 0) !== row.is_required) changed.push("is_required");
  if (patch.enum_options !== undefined && JSON.stringify(patch.enum_options) !== row.enum_options) changed.push("enum_options");
  if (patch.metadata !== undefined && JSON.stringify(patch.metadata) !== row.metadata) changed.push("metadata");
  return changed;
}

export async function updateDefinition(q: Q, row: DefinitionRow, patch: DefinitionPatch, now: number): Promise<DefinitionRow> {
  const set = {
    code: patch.code ?? row.code,
    name: patch.name ?? row.name,
    is_required: patch.is_required === undefined ? row.is_required : patch.is_required ? 1 : 0,
    enum_options: patch.enum_options !== undefined ? JSON.stringify(patch.enum_options) : row.enum_options,
    metadata: patch.metadata !== undefined ? JSON.stringify(patch.metadata) : row.metadata,
    updated_at: now,
  };
  await q.updateTable("custom_field_definitions").set(set).where("id", "=", row.id).execute();
  return { ...row, ...set };
}

export async function deleteDefinition(q: Q, id: string): Promise<void> {
  await q.deleteFrom("custom_field_definitions").where("id", "=", id).execute();
}

export async function countValues(q: Q, definitionId: string): Promise<number> {
  const r = await q
    .selectFrom("custom_field_values")
    .select((eb) => eb.fn.countAll().as("n"))
    .where("definition_id", "=", definitionId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Distinct enum values stored under a definition that are not among `options`. */
export async function enumValuesOutside(q: Q, definitionId: string, options: string[]): Promise<string[]> {
  let qb = q.selectFrom("custom_field_values").select("enum_value").distinct().where("definition_id", "=", definitionId).where("enum_value", "is not", null);
  if (options.length > 0) qb = qb.where("enum_value", "not in", options);
  const rows = await qb.orderBy("enum_value").execute();
  return rows.map((r) => r.enum_value!);
}

export interface ValueView {
  definition_id: string;
  product_id: string;
  resource_type: CustomFieldResourceType;
  resource_id: string;
  code: string;
  name: string;
  value_type: CustomFieldValueType;
  is_required: boolean;
  enum_options: string[];
  metadata: Record<string, unknown>;
  string_value?: string;
  integer_value?: number;
  boolean_value?: boolean;
  datetime_value?: string;
  enum_value?: string;
  updated_at: string;
}

/** A value with its definition's fields, as CustomFieldValue; only the typed field that is set appears. */
export function valueView(def: DefinitionRow, v: ValueRow): ValueView {
  return {
    definition_id: def.id,
    product_id: def.product_id,
    resource_type: def.resource_type,
    resource_id: v.resource_id,
    code: def.code,
    name: def.name,
    value_type: def.value_type,
    is_required: def.is_required === 1,
    enum_options: enumOptionsOf(def),
    metadata: parseJsonObject(def.metadata),
    ...(v.string_value !== null ? { string_value: v.string_value } : {}),
    ...(v.integer_value !== null ? { integer_value: Number(v.integer_value) } : {}),
    ...(v.boolean_value !== null ? { boolean_value: v.boolean_value === 1 } : {}),
    ...(v.datetime_value !== null ? { datetime_value: iso(Number(v.datetime_value)) } : {}),
    ...(v.enum_value !== null ? { enum_value: v.enum_value } : {}),
    updated_at: iso(v.updated_at),
  };
}

/** Sets the one typed column of a value (insert or replace); the other typed columns are cleared. */
export async function upsertValue(q: Q, definitionId: string, resourceId: string, field: ValueField, stored: string | number, now: number): Promise<ValueRow> {
  const typed = { string_value: null, integer_value: null, boolean_value: null, datetime_value: null, enum_value: null, [field]: stored } as Pick<
    ValueRow,
    ValueField
  >;
  await q
    .insertInto("custom_field_values")
    .values({ definition_id: definitionId, resource_id: resourceId, ...typed, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(["definition_id", "resource_id"]).doUpdateSet({ ...typed, updated_at: now }))
    .execute();
  return q
    .selectFrom("custom_field_values")
    .selectAll()
    .where("definition_id", "=", definitionId)
    .where("resource_id", "=", resourceId)
    .executeTakeFirstOrThrow();
}

/** Removes a value; false when there was none. */
export async function deleteValue(q: Q, definitionId: string, resourceId: string): Promise<boolean> {
  const r = await q.deleteFrom("custom_field_values").where("definition_id", "=", definitionId).where("resource_id", "=", resourceId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** The values set on one license or customer, each with its definition, newest definition first. */
export async function listValues(q: Q, resourceType: CustomFieldResourceType, resourceId: string, limit: number, before: string | null) {
  let qb = q
    .selectFrom("custom_field_values")
    .innerJoin("custom_field_definitions", "custom_field_definitions.id", "custom_field_values.definition_id")
    .selectAll("custom_field_values")
    .where("custom_field_values.resource_id", "=", resourceId)
    .where("custom_field_definitions.resource_type", "=", resourceType)
    .orderBy("custom_field_values.definition_id", "desc")
    .limit(limit + 1);
  if (before) qb = qb.where("custom_field_values.definition_id", "<", before);
  const page = toPage(
    (await qb.execute()).map((v) => ({ ...v, id: v.definition_id })),
    limit,
  );
  const ids = page.rows.map((v) => v.definition_id);
  const defs = ids.length === 0 ? [] : await q.selectFrom("custom_field_definitions").selectAll().where("id", "in", ids).execute();
  const byId = new Map(defs.map((d) => [d.id, d]));
  return { rows: page.rows.map((v) => valueView(byId.get(v.definition_id)!, v)), nextCursor: page.nextCursor };
}
