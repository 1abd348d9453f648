// Custom fields (NOTES §14): product definitions (create/get/list/update/delete) and typed values on
// licenses and customers (list/upsert/clear), against the contract, with the audit event each write
// leaves.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, issueLicense, startHarness } from "./helpers/harness.js";

const UNKNOWN = "x_01AAAAAAAAAAAAAAAAAAAAAAAA";

for (const engine of ENGINES) {
  describe(`custom fields [${engine}]`, () => {
    let h: Harness;
    let productId = "";
    let otherProductId = "";
    let licenseId = "";
    let otherLicenseId = "";
    let customerId = "";

    before(async () => {
      h = await startHarness(engine);
      const lic = await issueLicense(h);
      productId = lic.productId;
      licenseId = lic.licenseId;
      const other = await issueLicense(h);
      otherProductId = other.productId;
      otherLicenseId = other.licenseId;
      customerId = (await h.request({ url: "/api/v1/customers", body: { name: "Umbrella", code: "umbrella" } })).json.data.id;
    });
    after(async () => h?.close());

    const events = async (type: string, resourceId: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("event_type", "=", type).where("resource_id", "=", resourceId).execute();
    const eventCount = async () => Number((await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);
    const expectError = (res: { status: number; json: { error?: { code: string; detail?: string } } }, status: number, code: string, detailPart?: string) => {
      assert.equal(res.status, status, JSON.stringify(res.json));
      assert.equal(res.json.error?.code, code);
      if (detailPart) assert.match(res.json.error?.detail ?? "", new RegExp(detailPart));
    };
    let n = 0;
    const define = (body: Record<string, unknown>, product = productId) =>
      h.request({ url: `/api/v1/products/${product}/custom-fields`, body: { resource_type: "license", code: `f${++n}`, name: "Field", value_type: "string", ...body } });
    const fieldUrl = (fieldId: string, product = productId) => `/api/v1/products/${product}/custom-fields/${fieldId}`;
    const put = (resource: "licenses" | "customers", id: string, fieldId: string, body: unknown, idempotencyKey?: string) =>
      h.request({ method: "PUT", url: `/api/v1/${resource}/${id}/custom-fields/${fieldId}`, body, idempotencyKey });

    describe("definitions", () => {
      it("create → get → list match the contract; one custom_field.created event", async () => {
        const created = await define({ code: "region", name: "Region", value_type: "enum", enum_options: ["eu", "us"], is_required: true, metadata: { ui: "select" } });
        assert.equal(created.status, 201, created.text);
        assertOperationResponse("/api/v1/products/{id}/custom-fields", "post", "201", created.json);
        const d = created.json.data;
        assertContract("CustomFieldDefinition", d);
        assert.match(d.id, /^fld_/);
        assert.deepEqual(
          { product_id: d.product_id, resource_type: d.resource_type, code: d.code, value_type: d.value_type, is_required: d.is_required, enum_options: d.enum_options },
          { product_id: productId, resource_type: "license", code: "region", value_type: "enum", is_required: true, enum_options: ["eu", "us"] },
        );
        const ev = await events("custom_field.created", d.id);
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.resource_type, "custom_field");
        assert.equal(JSON.parse(ev[0]!.metadata).code, "region");

        const plain = await define({ code: "notes" });
        assert.equal(plain.status, 201);
        assert.deepEqual(plain.json.data.enum_options, []);
        assert.equal(plain.json.data.is_required, false);

        const got = await h.request({ url: fieldUrl(d.id) });
        assert.equal(got.status, 200);
        assertOperationResponse("/api/v1/products/{id}/custom-fields/{field_id}", "get", "200", got.json);
        assert.deepEqual(got.json.data, d);
        const list = await h.request({ url: `/api/v1/products/${productId}/custom-fields` });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/products/{id}/custom-fields", "get", "200", list.json);
        const ids = list.json.data.map((x: { id: string }) => x.id);
        assert.ok(ids.indexOf(plain.json.data.id) < ids.indexOf(d.id), "newest first");
        assert.deepEqual((await h.request({ url: `/api/v1/products/${otherProductId}/custom-fields` })).json.data, []);
      });

      it("createProductCustomFieldDefinition: 404 product, 409 duplicate code per resource type, 422 enum_options rules, 400 unknown field", async () => {
        expectError(await define({}, UNKNOWN), 404, "NOT_FOUND");
        assert.equal((await define({ code: "tier" })).status, 201);
        expectError(await define({ code: "tier" }), 409, "CONFLICT", "field code");
        assert.equal((await define({ code: "tier", resource_type: "customer" })).status, 201, "the same code for another resource type");
        assert.equal((await define({ code: "tier" }, otherProductId)).status, 201, "the same code on another product");
        expectError(await define({ value_type: "enum" }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await define({ value_type: "enum", enum_options: [] }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await define({ value_type: "enum", enum_options: ["a", "a"] }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await define({ value_type: "integer", enum_options: ["a"] }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await define({ value_type: "decimal" }), 422, "VALIDATION_ERROR", "field value_type");
        expectError(await define({ resource_type: "device" }), 422, "VALIDATION_ERROR", "field resource_type");
        expectError(await define({ code: "has space" }), 422, "VALIDATION_ERROR", "field code");
        expectError(await define({ default: "x" }), 400, "INVALID_JSON", "default");
        expectError(await define({ is_required: "yes" }), 400, "INVALID_JSON", "is_required");
        expectError(await h.request({ url: `/api/v1/products/${UNKNOWN}/custom-fields` }), 404, "NOT_FOUND");
      });

      it("get: 404 for an unknown field or a field of another product", async () => {
        const d = (await define({})).json.data;
        expectError(await h.request({ url: fieldUrl(UNKNOWN) }), 404, "NOT_FOUND");
        expectError(await h.request({ url: fieldUrl(d.id, otherProductId) }), 404, "NOT_FOUND");
      });

      it("update: changes code/name/is_required/enum_options/metadata and records custom_field.updated with the fields", async () => {
        const d = (await define({ value_type: "enum", enum_options: ["a", "b"] })).json.data;
        const res = await h.request({
          method: "PATCH",
          url: fieldUrl(d.id),
          body: { code: "renamed", name: "Renamed", is_required: true, enum_options: ["a", "b", "c"], metadata: { v: 2 } },
        });
        assert.equal(res.status, 200, res.text);
        assertOperationResponse("/api/v1/products/{id}/custom-fields/{field_id}", "patch", "200", res.json);
        assert.equal(res.json.data.code, "renamed");
        assert.equal(res.json.data.is_required, true);
        assert.deepEqual(res.json.data.enum_options, ["a", "b", "c"]);
        assert.equal(res.json.data.value_type, "enum");
        const ev = await events("custom_field.updated", d.id);
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).fields.sort(), ["code", "enum_options", "is_required", "metadata", "name"]);
        const before = await eventCount();
        const same = await h.request({ method: "PATCH", url: fieldUrl(d.id), body: { name: "Renamed" } });
        assert.equal(same.status, 200);
        assert.deepEqual(same.json.data, res.json.data);
        assert.equal(await eventCount(), before, "a no-op patch records nothing");
      });

      it("update: 404, 409 duplicate code, 409 when an option in use would go, 422 enum_options rules, 400 for resource_type/value_type", async () => {
        const taken = (await define({ code: "upd-taken" })).json.data;
        const d = (await define({ value_type: "enum", enum_options: ["gold", "silver", "bronze"] })).json.data;
        const s = (await define({})).json.data;
        const patch = (id: string, body: unknown, product = productId) => h.request({ method: "PATCH", url: fieldUrl(id, product), body });
        expectError(await patch(UNKNOWN, { name: "x" }), 404, "NOT_FOUND");
        expectError(await patch(d.id, { name: "x" }, otherProductId), 404, "NOT_FOUND");
        expectError(await patch(d.id, { code: "upd-taken" }), 409, "CONFLICT", "field code");
        assert.ok(taken.id);
        assert.equal((await put("licenses", licenseId, d.id, { enum_value: "gold" })).status, 200);
        expectError(await patch(d.id, { enum_options: ["silver", "bronze"] }), 409, "CONFLICT", 'field enum_options: .*"gold"');
        const dropUnused = await patch(d.id, { enum_options: ["gold", "silver"] });
        assert.equal(dropUnused.status, 200, "dropping an option no value uses is fine");
        expectError(await patch(d.id, { enum_options: [] }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await patch(d.id, { enum_options: ["gold", "gold"] }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await patch(s.id, { enum_options: ["x"] }), 422, "VALIDATION_ERROR", "field enum_options");
        expectError(await patch(s.id, { value_type: "integer" }), 400, "INVALID_JSON", "value_type");
        expectError(await patch(s.id, { resource_type: "customer" }), 400, "INVALID_JSON", "resource_type");
        assert.equal((await events("custom_field.updated", s.id)).length, 0);
        // Clean up the value so the field can be deleted elsewhere if needed.
        assert.equal((await put("licenses", licenseId, d.id, { clear: true })).status, 204);
      });

      it("delete: 409 while values exist (the detail says so), 204 once cleared, one custom_field.deleted event, then 404", async () => {
        const d = (await define({ code: "to-delete" })).json.data;
        assert.equal((await put("licenses", licenseId, d.id, { string_value: "keep" })).status, 200);
        const blocked = await h.request({ method: "DELETE", url: fieldUrl(d.id) });
        expectError(blocked, 409, "CONFLICT", "still has 1 license value");
        assert.equal((await put("licenses", licenseId, d.id, { clear: true })).status, 204);
        expectError(await h.request({ method: "DELETE", url: fieldUrl(d.id, otherProductId) }), 404, "NOT_FOUND");
        const del = await h.request({ method: "DELETE", url: fieldUrl(d.id) });
        assert.equal(del.status, 204);
        assert.equal(del.text, "");
        const ev = await events("custom_field.deleted", d.id);
        assert.equal(ev.length, 1);
        assert.equal(JSON.parse(ev[0]!.metadata).code, "to-delete");
        expectError(await h.request({ url: fieldUrl(d.id) }), 404, "NOT_FOUND");
        expectError(await h.request({ method: "DELETE", url: fieldUrl(d.id) }), 404, "NOT_FOUND");
        assert.equal((await define({ code: "to-delete" })).status, 201, "the code is free again");
      });
    });

    describe("license values", () => {
      it("upsert sets each value type (200, contract shape, custom_field_value.set) and list shows them", async () => {
        const str = (await define({ code: "v-str" })).json.data;
        const int = (await define({ code: "v-int", value_type: "integer" })).json.data;
        const bool = (await define({ code: "v-bool", value_type: "boolean" })).json.data;
        const dt = (await define({ code: "v-dt", value_type: "datetime" })).json.data;
        const en = (await define({ code: "v-enum", value_type: "enum", enum_options: ["x", "y"], metadata: { m: 1 } })).json.data;
        const lic = await issueLicense(h);
        const setEvents = async () =>
          (await events("custom_field_value.set", licenseId)).filter((e) => [str.id, int.id, bool.id, dt.id, en.id].includes(JSON.parse(e.metadata).field_id));

        const set = await put("licenses", licenseId, str.id, { string_value: "hello" });
        assert.equal(set.status, 200, set.text);
        assertOperationResponse("/api/v1/licenses/{id}/custom-fields/{field_id}", "put", "200", set.json);
        assertContract("CustomFieldValue", set.json.data);
        assert.deepEqual(
          { ...set.json.data, updated_at: undefined },
          {
            definition_id: str.id,
            product_id: productId,
            resource_type: "license",
            resource_id: licenseId,
            code: "v-str",
            name: "Field",
            value_type: "string",
            is_required: false,
            enum_options: [],
            metadata: {},
            string_value: "hello",
            updated_at: undefined,
          },
        );
        const ev = await setEvents();
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.resource_type, "license");
        const meta = JSON.parse(ev[0]!.metadata);
        assert.equal(meta.field_id, str.id);
        assert.equal(meta.field_code, "v-str");
        assert.ok(!JSON.stringify(meta).includes("hello"), "the value itself is not in the event");

        assert.equal((await put("licenses", licenseId, str.id, { string_value: "again" })).json.data.string_value, "again", "an upsert replaces");
        assert.equal((await put("licenses", licenseId, int.id, { integer_value: -9007199254740991 })).json.data.integer_value, -9007199254740991);
        assert.equal((await put("licenses", licenseId, bool.id, { boolean_value: false })).json.data.boolean_value, false);
        assert.equal((await put("licenses", licenseId, dt.id, { datetime_value: "2026-05-01T10:00:00+02:00" })).json.data.datetime_value, "2026-05-01T08:00:00.000Z");
        const enumSet = await put("licenses", licenseId, en.id, { enum_value: "y", clear: false });
        assert.equal(enumSet.status, 200, enumSet.text);
        assert.equal(enumSet.json.data.enum_value, "y");
        assert.deepEqual(enumSet.json.data.metadata, { m: 1 });
        assert.deepEqual(enumSet.json.data.enum_options, ["x", "y"]);
        assert.equal((await setEvents()).length, 6);

        const list = await h.request({ url: `/api/v1/licenses/${licenseId}/custom-fields` });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/licenses/{id}/custom-fields", "get", "200", list.json);
        const byCode = Object.fromEntries(list.json.data.map((v: { code: string }) => [v.code, v]));
        assert.equal(byCode["v-str"].string_value, "again");
        assert.equal(byCode["v-int"].integer_value, -9007199254740991);
        assert.equal(byCode["v-bool"].boolean_value, false);
        assert.equal(byCode["v-dt"].datetime_value, "2026-05-01T08:00:00.000Z");
        assert.equal(byCode["v-enum"].enum_value, "y");
        for (const v of list.json.data) assert.equal(Object.keys(v).filter((k) => k.endsWith("_value")).length, 1, "exactly one typed value");
        const ids = list.json.data.map((v: { definition_id: string }) => v.definition_id);
        assert.deepEqual(ids, [...ids].sort().reverse(), "newest definition first");
        const page = await h.request({ url: `/api/v1/licenses/${licenseId}/custom-fields?limit=2` });
        assert.equal(page.json.data.length, 2);
        const rest = await h.request({ url: `/api/v1/licenses/${licenseId}/custom-fields?limit=200&cursor=${page.json.page_info.next_cursor}` });
        assert.equal(rest.status, 200);
        assert.equal(page.json.data.length + rest.json.data.length, list.json.data.length);
        assert.equal(rest.json.page_info.next_cursor, null);
        assert.deepEqual((await h.request({ url: `/api/v1/licenses/${lic.licenseId}/custom-fields` })).json.data, [], "another license has none");
      });

      it("clear answers 204 and records custom_field_value.cleared; clearing an unset value is a no-op", async () => {
        const d = (await define({ code: "to-clear" })).json.data;
        assert.equal((await put("licenses", licenseId, d.id, { string_value: "x" })).status, 200);
        const cleared = await put("licenses", licenseId, d.id, { clear: true });
        assert.equal(cleared.status, 204);
        assert.equal(cleared.text, "");
        const ev = (await events("custom_field_value.cleared", licenseId)).filter((e) => JSON.parse(e.metadata).field_id === d.id);
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.resource_type, "license");
        const list = await h.request({ url: `/api/v1/licenses/${licenseId}/custom-fields` });
        assert.ok(!list.json.data.some((v: { definition_id: string }) => v.definition_id === d.id));
        const before = await eventCount();
        assert.equal((await put("licenses", licenseId, d.id, { clear: true })).status, 204);
        assert.equal(await eventCount(), before);
      });

      it("422: wrong typed field, two values, none, clear with a value, enum outside options, unsafe integer, required field cleared", async () => {
        const s = (await define({ code: "rule-str" })).json.data;
        const i = (await define({ code: "rule-int", value_type: "integer" })).json.data;
        const e = (await define({ code: "rule-enum", value_type: "enum", enum_options: ["on", "off"] })).json.data;
        const r = (await define({ code: "rule-req", is_required: true })).json.data;
        expectError(await put("licenses", licenseId, s.id, { integer_value: 1 }), 422, "VALIDATION_ERROR", "field integer_value: .*string_value");
        expectError(await put("licenses", licenseId, s.id, { string_value: "a", enum_value: "b" }), 422, "VALIDATION_ERROR", "field enum_value");
        expectError(await put("licenses", licenseId, s.id, {}), 422, "VALIDATION_ERROR", "field string_value");
        expectError(await put("licenses", licenseId, s.id, { clear: false }), 422, "VALIDATION_ERROR", "field string_value");
        expectError(await put("licenses", licenseId, s.id, { clear: true, string_value: "a" }), 422, "VALIDATION_ERROR", "field clear");
        expectError(await put("licenses", licenseId, e.id, { enum_value: "maybe" }), 422, "VALIDATION_ERROR", "field enum_value: must be one of on, off");
        const unsafe = await h.request({
          method: "PUT",
          url: `/api/v1/licenses/${licenseId}/custom-fields/${i.id}`,
          rawBody: '{"integer_value": 9007199254740993}',
          headers: { "content-type": "application/json" },
        });
        expectError(unsafe, 422, "VALIDATION_ERROR", "field integer_value");
        expectError(await put("licenses", licenseId, i.id, { integer_value: 1.5 }), 400, "INVALID_JSON", "integer_value");
        expectError(await put("licenses", licenseId, s.id, { datetime_value: "soon" }), 422, "VALIDATION_ERROR", "datetime_value");
        assert.equal((await put("licenses", licenseId, r.id, { string_value: "must stay" })).status, 200);
        expectError(await put("licenses", licenseId, r.id, { clear: true }), 422, "VALIDATION_ERROR", "a required custom field cannot be cleared");
        const still = await h.request({ url: `/api/v1/licenses/${licenseId}/custom-fields` });
        assert.ok(still.json.data.some((v: { definition_id: string }) => v.definition_id === r.id));
        // Once the definition is no longer required, the value can be cleared.
        assert.equal((await h.request({ method: "PATCH", url: fieldUrl(r.id), body: { is_required: false } })).status, 200);
        assert.equal((await put("licenses", licenseId, r.id, { clear: true })).status, 204);
      });

      it("404 for an unknown license or field; 422 for another product's field or a customer field; 409 idempotency conflict; 400 unknown field", async () => {
        const d = (await define({ code: "scope-check" })).json.data;
        const customerField = (await define({ code: "cust-only", resource_type: "customer" })).json.data;
        expectError(await put("licenses", UNKNOWN, d.id, { string_value: "x" }), 404, "NOT_FOUND");
        expectError(await put("licenses", licenseId, UNKNOWN, { string_value: "x" }), 404, "NOT_FOUND", "field_id");
        expectError(await put("licenses", otherLicenseId, d.id, { string_value: "x" }), 422, "VALIDATION_ERROR", "field field_id: .*belongs to product");
        expectError(await put("licenses", licenseId, customerField.id, { string_value: "x" }), 422, "VALIDATION_ERROR", "field field_id: .*customer records");
        expectError(await put("licenses", licenseId, d.id, { text_value: "x" }), 400, "INVALID_JSON", "text_value");
        expectError(await put("licenses", licenseId, d.id, { string_value: 5 }), 400, "INVALID_JSON", "string_value");
        const first = await put("licenses", licenseId, d.id, { string_value: "one" }, "cf-idem-1");
        assert.equal(first.status, 200);
        const replay = await put("licenses", licenseId, d.id, { string_value: "one" }, "cf-idem-1");
        assert.equal(replay.status, 200);
        assert.equal(replay.text, first.text);
        expectError(await put("licenses", licenseId, d.id, { string_value: "two" }, "cf-idem-1"), 409, "IDEMPOTENCY_CONFLICT");
        expectError(await h.request({ url: `/api/v1/licenses/${UNKNOWN}/custom-fields` }), 404, "NOT_FOUND");
      });
    });

    describe("customer values", () => {
      it("any product's customer field can be set on a customer; list, clear, and the 404/422/409/400 cases", async () => {
        const a = (await define({ code: "account-manager", resource_type: "customer" })).json.data;
        const b = (await define({ code: "seats", resource_type: "customer", value_type: "integer" }, otherProductId)).json.data;
        const licField = (await define({ code: "lic-field" })).json.data;
        const setA = await put("customers", customerId, a.id, { string_value: "Alice" });
        assert.equal(setA.status, 200, setA.text);
        assertOperationResponse("/api/v1/customers/{id}/custom-fields/{field_id}", "put", "200", setA.json);
        assertContract("CustomFieldValue", setA.json.data);
        assert.equal(setA.json.data.resource_type, "customer");
        assert.equal(setA.json.data.resource_id, customerId);
        const setB = await put("customers", customerId, b.id, { integer_value: 25 });
        assert.equal(setB.status, 200, setB.text);
        assert.equal(setB.json.data.product_id, otherProductId);
        const ev = await events("custom_field_value.set", customerId);
        assert.equal(ev.length, 2);
        assert.equal(ev[0]!.resource_type, "customer");
        assert.deepEqual(
          ev.map((e) => JSON.parse(e.metadata).field_code),
          ["account-manager", "seats"],
        );

        const list = await h.request({ url: `/api/v1/customers/${customerId}/custom-fields` });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/customers/{id}/custom-fields", "get", "200", list.json);
        assert.deepEqual(list.json.data.map((v: { code: string }) => v.code).sort(), ["account-manager", "seats"]);

        const cleared = await put("customers", customerId, b.id, { clear: true });
        assert.equal(cleared.status, 204);
        assert.equal((await events("custom_field_value.cleared", customerId)).length, 1);

        expectError(await put("customers", UNKNOWN, a.id, { string_value: "x" }), 404, "NOT_FOUND");
        expectError(await put("customers", customerId, UNKNOWN, { string_value: "x" }), 404, "NOT_FOUND");
        expectError(await put("customers", customerId, licField.id, { string_value: "x" }), 422, "VALIDATION_ERROR", "field field_id: .*license records");
        expectError(await put("customers", customerId, b.id, { string_value: "x" }), 422, "VALIDATION_ERROR", "field string_value");
        expectError(await put("customers", customerId, a.id, { nope: true }), 400, "INVALID_JSON", "nope");
        assert.equal((await put("customers", customerId, a.id, { string_value: "Bob" }, "cust-cf-1")).status, 200);
        expectError(await put("customers", customerId, a.id, { string_value: "Carol" }, "cust-cf-1"), 409, "IDEMPOTENCY_CONFLICT");
        expectError(await h.request({ url: `/api/v1/customers/${UNKNOWN}/custom-fields` }), 404, "NOT_FOUND");

        // A definition with values cannot be deleted while a customer still holds one.
        expectError(await h.request({ method: "DELETE", url: fieldUrl(a.id) }), 409, "CONFLICT", "customer value");
      });
    });
  });
}
