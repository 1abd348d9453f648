// /api/v1/customers (admin only, NOTES §10)
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { managementEvent } from "../../http/actor.js";
import { responseMeta } from "../../http/envelope.js";
import { ApiError } from "../../http/errors.js";
import { commitAndRespond, managementOutcome, noContentOutcome } from "../../http/respond.js";
import { DateTime, dataEnvelope, errorResponses, IdParams, IdempotencyHeader, ListQuery, listEnvelope, Metadata } from "../../http/schemas.js";
import { recordEvent } from "../../store/audit-events.js";
import {
  changedCustomerFields,
  customerReferences,
  customerView,
  deleteCustomer,
  findCustomer,
  findCustomerByCode,
  insertCustomer,
  listCustomers,
  lockCustomer,
  updateCustomer,
} from "../../store/customers.js";
import { isForeignKeyViolation, isUniqueViolation } from "../../store/db.js";
import { clampLimit, decodeCursor } from "../../store/pagination.js";
import { Code, MANAGEMENT_ERRORS, Name, READ_ERRORS, WRITE_ERRORS } from "./common.js";

export const Customer = Type.Object({
  id: Type.String(),
  name: Type.String(),
  code: Type.String(),
  email: Type.Optional(Type.String()),
  metadata: Metadata,
  created_at: DateTime,
  updated_at: DateTime,
});

const CustomerCreateRequest = Type.Object(
  { name: Name, code: Code, email: Type.Optional(Type.String({ format: "email", maxLength: 320 })), metadata: Type.Optional(Metadata) },
  { additionalProperties: false },
);

/** Every field optional; an empty body changes nothing (200, no event). `metadata` replaces the whole
 * object; `email: ""` clears the email. */
const CustomerUpdateRequest = Type.Object(
  {
    name: Type.Optional(Name),
    code: Type.Optional(Code),
    email: Type.Optional(Type.Union([Type.String({ format: "email", maxLength: 320 }), Type.Literal("")], { description: "An empty string clears the email." })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

export const customerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/customers",
    {
      config: { scope: "admin" },
      schema: {
        operationId: "listCustomers",
        tags: ["customers"],
        querystring: ListQuery,
        response: { 200: listEnvelope(Customer), ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY") },
      },
    },
    async (req) => {
      const page = await listCustomers(app.lk.store.db, clampLimit(req.query.limit), decodeCursor(req.query.cursor));
      return { data: page.rows.map(customerView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );

  app.post(
    "/customers",
    {
      config: { scope: "admin", idempotency: "optional" },
      schema: {
        operationId: "createCustomer",
        tags: ["customers"],
        headers: IdempotencyHeader(false),
        body: CustomerCreateRequest,
        response: { 201: dataEnvelope(Customer), ...errorResponses(...WRITE_ERRORS) },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const taken = await findCustomerByCode(trx, req.body.code);
        if (taken) throw new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by customer ${taken.id}`);
        const row = await insertCustomer(trx, req.body, app.lk.clock.now());
        await recordEvent(trx, managementEvent(req, "customer.created", "customer", row.id, { code: row.code }));
        return managementOutcome(req, reply, 201, customerView(row));
      }),
  );

  app.get(
    "/customers/:id",
    {
      config: { scope: "admin" },
      schema: { operationId: "getCustomer", tags: ["customers"], params: IdParams, response: { 200: dataEnvelope(Customer), ...errorResponses(...READ_ERRORS) } },
    },
    async (req) => {
      const row = await findCustomer(app.lk.store.db, req.params.id);
      if (!row) throw new ApiError("NOT_FOUND", `customer ${req.params.id} not found`);
      return { data: customerView(row), meta: responseMeta(req) };
    },
  );

  app.patch(
    "/customers/:id",
    {
      config: { scope: "admin", idempotency: "optional" },
      schema: {
        operationId: "updateCustomer",
        tags: ["customers"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        body: CustomerUpdateRequest,
        response: { 200: dataEnvelope(Customer), ...errorResponses(...WRITE_ERRORS, "NOT_FOUND") },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockCustomer(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `customer ${req.params.id} not found`);
        const changed = changedCustomerFields(row, req.body);
        if (changed.length === 0) return managementOutcome(req, reply, 200, customerView(row));
        const codeTaken = () => new ApiError("CONFLICT", `field code: "${req.body.code}" is already used by another customer`);
        if (changed.includes("code") && (await findCustomerByCode(trx, req.body.code!))) throw codeTaken();
        let updated: typeof row;
        try {
          updated = await updateCustomer(trx, row, req.body, app.lk.clock.now());
        } catch (err) {
          if (isUniqueViolation(err)) throw codeTaken(); // another customer took the code meanwhile
          throw err;
        }
        await recordEvent(trx, managementEvent(req, "customer.updated", "customer", row.id, { code: updated.code, changed }));
        return managementOutcome(req, reply, 200, customerView(updated));
      }),
  );

  app.delete(
    "/customers/:id",
    {
      config: { scope: "admin", idempotency: "optional" },
      schema: {
        operationId: "deleteCustomer",
        tags: ["customers"],
        params: IdParams,
        headers: IdempotencyHeader(false),
        response: {
          204: Type.Null({ description: "Customer deleted; empty body." }),
          ...errorResponses(...READ_ERRORS, "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"),
        },
      },
    },
    async (req, reply) =>
      commitAndRespond(req, reply, async (trx) => {
        const row = await lockCustomer(trx, app.lk.store.engine, req.params.id);
        if (!row) throw new ApiError("NOT_FOUND", `customer ${req.params.id} not found`);
        const inUse = (what: string) => new ApiError("CONFLICT", `customer ${row.id} is still referenced by ${what}; transfer or delete those first`);
        const refs = await customerReferences(trx, row.id);
        if (refs.length > 0) throw inUse(refs.join(", "));
        try {
          await deleteCustomer(trx, row.id);
        } catch (err) {
          if (isForeignKeyViolation(err)) throw inUse("records created meanwhile"); // a reference committed after the check
          throw err;
        }
        await recordEvent(trx, managementEvent(req, "customer.deleted", "customer", row.id, { code: row.code, name: row.name }));
        return noContentOutcome(reply);
      }),
  );
};
