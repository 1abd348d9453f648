// /api/v1: custom-field definitions (/products/{id}/custom-fields) and customer/license custom-field
// values (/customers/{id}/custom-fields, /licenses/{id}/custom-fields), NOTES §14.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import {
  CUSTOM_FIELD_RESOURCE_TYPES,
  CUSTOM_FIELD_VALUE_TYPES,
  type CustomFieldResourceType,
  checkEnumOptions,
  decideValue,
  MAX_STRING_VALUE_LENGTH,
} from "../../domain/custom-field-values.js";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata, StringEnum } from "../../http/schemas.js";
import type { Scope } from "../../http/scopes.js";
import { recordEvent } from "../../store/audit-events.js";
import {
  changedDefinitionFields,
  countValues,
  definitionView,
  deleteDefinition,
  deleteValue,
  enumOptionsOf,
  enumValuesOutside,
  findDefinition,
  findDefinitionByCode,
  insertDefinition,
  listDefinitions,
  listValues,
  lockDefinition,
  updateDefinition,
  upsertValue,
  valueView,
} from "../../store/custom-fields.js";
import { findCustomer } from "../../store/customers.js";
import { isUniqueViolation, type Q } from "../../store/db.js";
import { findLicense } from "../../store/licenses.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { findProduct } from "../../store/products.js";
import type { CustomFieldDefinitionRow } from "../../store/schema.js";
import { Code, Name, READ_ERRORS, WRITE_ERRORS } from "./common.js";

const ResourceType = StringEnum(CUSTOM_FIELD_RESOURCE_TYPES);
const ValueType = StringEnum(CUSTOM_FIELD_VALUE_TYPES);
const EnumOptions = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
  maxItems: 500,
  description: "Required (non-empty, unique) for enum fields; refused for other value types. Dropping an option a stored value uses is a 409.",
});
const FieldParams = Type.Object({ id: Type.String(), field_id: Type.String() });

export const CustomFieldDefinition = Type.Object({
  id: Type.String(),
  product_id: Type.String(),
  resource_type: ResourceType,
  code: Type.String(),
  name: Type.String(),
  value_type: ValueType,
  is_required: Type.Boolean(),
  enum_options: Type.Array(Type.String()),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const CustomFieldDefinitionCreateRequest = Type.Object(
  {
    resource_type: ResourceType,
    code: Code,
    name: Name,
    value_type: ValueType,
    is_required: Type.Optional(Type.Boolean({ description: "Defaults to false. A required field's value cannot be cleared." })),
    enum_options: Type.Optional(EnumOptions),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

const CustomFieldDefinitionUpdateRequest = Type.Object(
  {
    code: Type.Optional(Code),
    name: Type.Optional(Name),
    is_required: Type.Optional(Type.Boolean()),
    enum_options: Type.Optional(EnumOptions),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const CustomFieldValue = Type.Object({
  definition_id: Type.String(),
  product_id: Type.String(),
  resource_type: ResourceType,
  resource_id: Type.String(),
  code: Type.String(),
  name: Type.String(),
  value_type: ValueType,
  is_required: Type.Boolean(),
  enum_options: Type.Array(Type.String()),
  metadata: Metadata,
  string_value: Type.Optional(Type.String()),
  integer_value: Type.Optional(Type.Integer()),
  boolean_value: Type.Optional(Type.Boolean()),
  datetime_value: Type.Optional(DateTime),
  enum_value: Type.Optional(Type.String()),
  updated_at: DateTime,
});

const CustomFieldValueUpsertRequest = Type.Object(
  {
    clear: Type.Optional(Type.Boolean()),
    string_value: Type.Optional(Type.String({ description: `At most ${MAX_STRING_VALUE_LENGTH} characters.` })),
    integer_value: Type.Optional(Type.Integer({ description: "Within the JSON-safe integer range (±2^53-1)." })),
    boolean_value: Type.Optional(Type.Boolean()),
    datetime_value: Type.Optional(DateTime),
    enum_value: Type.Optional(Type.String()),
  },
  { additionalProperties: false, description: "Exactly one typed value matching the definition's value_type, or clear: true." },
);

const duplicateCode = (resourceType: string, code: string, otherId: string) =>
  new ApiError("CONFLICT", `field code: "${code}" is already used by custom field ${otherId} of this product for ${resourceType} records`);

async function uniqueWrite<T>(resourceType: string, code: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateCode(resourceType, code, "another field");
    throw err;
  }
}

/** The definition at /products/{id}/custom-fields/{field_id}: 404 unless it exists under that product. */
function ofProduct(def: CustomFieldDefinitionRow | undefined, productId: string, fieldId: string): CustomFieldDefinitionRow {
  if (!def || def.product_id !== productId) throw new ApiError("NOT_FOUND", `custom field ${fieldId} not found for product ${productId}`);
  return def;
}

interface ValueResource {
  resourceType: CustomFieldResourceType;
  path: "customers" | "licenses";
  readScope: Scope;
  writeScope: Scope;
  listOperationId: string;
  upsertOperationId: string;
  /** The resource's product when values are tied to one (licenses), null for customers; undefined when it does not exist. */
  load(q: Q, id: string): Promise<{ productId: string | null } | undefined>;
}

const VALUE_RESOURCES: ValueResource[] = [
  {
    resourceType: "customer",
    path: "customers",
    readScope: "admin",
    writeScope: "admin",
    listOperationId: "listCustomerCustomFieldValues",
    upsertOperationId: "upsertCustomerCustomFieldValue",
    load: async (q, id) => ((await findCustomer(q, id)) ? { productId: null } : undefined),
  },
  {
    resourceType: "license",
    path: "licenses",
    readScope: "license:read",
    writeScope: "license:write",
    listOperationId: "listLicenseCustomFieldValues",
    upsertOperationId: "upsertLicenseCustomFieldValue",
    load: async (q, id) => {
      const lic = await findLicense(q, id);
      return lic ? { productId: lic.product_id } : undefined;
    },
  },
];

export const customFieldRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/products/:id/custom-fields",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "listProductCustomFieldDefinitions",
        tags: ["custom-fields"],
        params: IdParams,
        querystring: ListQuery,
        response: { 200: listEnvelope(CustomFieldDefinition), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const db = app.lk.store.db;
      const cursor = decodeCursor(req.query.cursor);
      if (!(await findProduct(db, req.params.id))) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
      const page = await listDefinitions(db, req.params.id, clampLimit(req.query.limit), cursor);
      return { data: page.rows.map(definitionView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/products/:id/custom-fields",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "createProductCustomFieldDefinition",
        tags: ["custom-fields"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: CustomFieldDefinitionCreateRequest,
        response: { 201: dataEnvelope(CustomFieldDefinition), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const product = await findProduct(trx, req.params.id);
        if (!product) throw new ApiError("NOT_FOUND", `product ${req.params.id} not found`);
        const b = req.body;
        const enumOptions = checkEnumOptions(b.value_type, b.enum_options);
        const taken = await findDefinitionByCode(trx, product.id, b.resource_type, b.code);
        if (taken) throw duplicateCode(b.resource_type, b.code, taken.id);
        const input = {
          resource_type: b.resource_type,
          code: b.code,
          name: b.name,
          value_type: b.value_type,
          is_required: b.is_required ?? false,
          enum_options: enumOptions,
          metadata: b.metadata ?? {},
        };
        const row = await uniqueWrite(b.resource_type, b.code, () => insertDefinition(trx, product.id, input, app.lk.clock.now()));
        await recordEvent(
          trx,
          managementEvent(req, "custom_field.created", "custom_field", row.id, {
            product_id: product.id,
            resource_type: row.resource_type,
            code: row.code,
            value_type: row.value_type,
          }),
        );
        return managementOutcome(req, reply, 201, definitionView(row));
      }),
  );

  app.get(
    "/products/:id/custom-fields/:field_id",
    {
      config: { scope: "product:read" },
      schema: {
        operationId: "getProductCustomFieldDefinition",
        tags: ["custom-fields"],
        params: FieldParams,
        response: { 200: dataEnvelope(CustomFieldDefinition), ...errorResponses(...READ_ERRORS) },
      },
    },
    async (req) => {
      const def = ofProduct(await findDefinition(app.lk.store.db, req.params.field_id), req.params.id, req.params.field_id);
      return { data: definitionView(def), meta: responseMeta(req) };
    },
  );

  app.patch(
    "/products/:id/custom-fields/:field_id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "updateProductCustomFieldDefinition",
        tags: ["custom-fields"],
        params: FieldParams,
        headers: IdempotencyHeader(false),
        body: CustomFieldDefinitionUpdateRequest,
        response: { 200: dataEnvelope(CustomFieldDefinition), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const def = ofProduct(await lockDefinition(trx, app.lk.store.engine, req.params.field_id), req.params.id, req.params.field_id);
        const b = req.body;
        const patch = { ...b, ...(b.enum_options !== undefined ? { enum_options: checkEnumOptions(def.value_type, b.enum_options) } : {}) };
        const changed = changedDefinitionFields(def, patch);
        if (changed.length === 0) return managementOutcome(req, reply, 200, definitionView(def));
        if (changed.includes("code")) {
          const taken = await findDefinitionByCode(trx, def.product_id, def.resource_type, patch.code!);
          if (taken && taken.id !== def.id) throw duplicateCode(def.resource_type, patch.code!, taken.id);
        }
        if (changed.includes("enum_options")) {
          const stranded = await enumValuesOutside(trx, def.id, patch.enum_options!);
          if (stranded.length > 0) {
            throw new ApiError(
              "CONFLICT",
              `field enum_options: stored values would no longer be valid (${stranded.map((v) => `"${v}"`).join(", ")}); change or clear those values first`,
            );
          }
        }
        const next = await uniqueWrite(def.resource_type, patch.code ?? def.code, () => updateDefinition(trx, def, patch, app.lk.clock.now()));
        await recordEvent(trx, managementEvent(req, "custom_field.updated", "custom_field", def.id, { product_id: def.product_id, fields: changed }));
        return managementOutcome(req, reply, 200, definitionView(next));
      }),
  );

  app.delete(
    "/products/:id/custom-fields/:field_id",
    {
      config: { scope: "product:write", idempotency: "optional" },
      schema: {
        operationId: "deleteProductCustomFieldDefinition",
        tags: ["custom-fields"],
        params: FieldParams,
        headers: IdempotencyHeader(false),
        response: {
          204: Type.Null({ description: "Custom field definition deleted." }),
          ...errorResponses(...READ_ERRORS, "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const def = ofProduct(await lockDefinition(trx, app.lk.store.engine, req.params.field_id), req.params.id, req.params.field_id);
        const n = await countValues(trx, def.id);
        if (n > 0) {
          throw new ApiError(
            "CONFLICT",
            `custom field ${def.id} still has ${n} ${def.resource_type} value${n === 1 ? "" : "s"}; clear them (PUT .../custom-fields/${def.id} with clear: true) before deleting it`,
          );
        }
        await deleteDefinition(trx, def.id);
        await recordEvent(
          trx,
          managementEvent(req, "custom_field.deleted", "custom_field", def.id, { product_id: def.product_id, resource_type: def.resource_type, code: def.code }),
        );
        return noContentOutcome(reply);
      }),
  );

  for (const r of VALUE_RESOURCES) {
    const noun = r.resourceType;
    app.get(
      `/${r.path}/:id/custom-fields`,
      {
        config: { scope: r.readScope },
        schema: {
          operationId: r.listOperationId,
          tags: ["custom-fields"],
          params: IdParams,
          querystring: ListQuery,
          response: { 200: listEnvelope(CustomFieldValue), ...errorResponses(...READ_ERRORS, "INVALID_QUERY") },
        },
      },
      async (req) => {
        const db = app.lk.store.db;
        const cursor = decodeCursor(req.query.cursor);
        if (!(await r.load(db, req.params.id))) throw new ApiError("NOT_FOUND", `${noun} ${req.params.id} not found`);
        const page = await listValues(db, r.resourceType, req.params.id, clampLimit(req.query.limit), cursor);
        return { data: page.rows, page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
      },
    );

    app.put(
      `/${r.path}/:id/custom-fields/:field_id`,
      {
        config: { scope: r.writeScope, idempotency: "optional" },
        schema: {
          operationId: r.upsertOperationId,
          tags: ["custom-fields"],
          params: FieldParams,
          headers: IdempotencyHeader(false),
          body: CustomFieldValueUpsertRequest,
          response: {
            200: dataEnvelope(CustomFieldValue),
            204: Type.Null({ description: `${noun === "license" ? "License" : "Customer"} custom field value cleared.` }),
            ...errorResponses(...WRITE_ERRORS, "NOT_FOUND"),
          },
        },
      },
      async (req, reply) =>
        commitAndRespond(req, reply, async (trx) => {
          const { id, field_id } = req.params;
          const resource = await r.load(trx, id);
          if (!resource) throw new ApiError("NOT_FOUND", `${noun} ${id} not found`);
          // The definition's row lock orders this write against a definition change or delete.
          const def = await lockDefinition(trx, app.lk.store.engine, field_id);
          if (!def) throw new ApiError("NOT_FOUND", `field field_id: custom field ${field_id} not found`);
          if (def.resource_type !== r.resourceType) {
            throw new ApiError("VALIDATION_ERROR", `field field_id: custom field ${def.id} is defined for ${def.resource_type} records, not ${noun} records`);
          }
          if (resource.productId !== null && def.product_id !== resource.productId) {
            throw new ApiError("VALIDATION_ERROR", `field field_id: custom field ${def.id} belongs to product ${def.product_id}, not the license's product ${resource.productId}`);
          }
          const decision = decideValue(
            { code: def.code, value_type: def.value_type, is_required: def.is_required === 1, enum_options: enumOptionsOf(def) },
            req.body,
          );
          const meta = { field_id: def.id, field_code: def.code, resource_type: noun };
          if (decision.kind === "clear") {
            // Clearing a value that is not set changes nothing and records nothing.
            if (await deleteValue(trx, def.id, id)) await recordEvent(trx, managementEvent(req, "custom_field_value.cleared", noun, id, meta));
            return noContentOutcome(reply);
          }
          const value = await upsertValue(trx, def.id, id, decision.field, decision.stored, app.lk.clock.now());
          await recordEvent(trx, managementEvent(req, "custom_field_value.set", noun, id, meta));
          return managementOutcome(req, reply, 200, valueView(def, value));
        }),
    );
  }
};
