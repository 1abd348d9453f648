// D7: every successful management write leaves exactly one audit event, in the same transaction,
// carrying the request id of the answer. One scripted operator session calls every write operation
// of the served OpenAPI document once (bulk: one event per license it changes); the test fails when
// a write operation is added without being covered here, or when any answer has zero or several
// events. Failed writes (4xx) leave none, and replays of an idempotent write add none.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { operationsOf } from "./helpers/conformance.js";
import type { Doc } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, type Reply, startHarness } from "./helpers/harness.js";

for (const engine of ENGINES) {
  describe(`one audit event per write [${engine}]`, () => {
    let h: Harness;
    let writeOps: string[] = [];
    const called = new Map<string, number>();
    const problems: string[] = [];
    let n = 0;

    before(async () => {
      h = await startHarness(engine);
      const doc: Doc = (await h.request({ url: "/api/v1/openapi.json", token: null })).json;
      writeOps = [...operationsOf(doc)].filter(([, o]) => o.op["x-required-scopes"] && o.method !== "get").map(([, o]) => o.op.operationId as string);
    });
    after(async () => h?.close());

    const eventsOf = async (requestId: string) =>
      h.lk.store.db.selectFrom("audit_events").select(["event_type", "resource_id"]).where("request_id", "=", requestId).execute();

    /** Calls a write, requires a 2xx, and checks it left `expected` events (1 unless told). */
    async function write(operationId: string, method: "POST" | "PUT" | "PATCH" | "DELETE", url: string, body?: unknown, expected = 1): Promise<Reply> {
      const res = await h.request({ method, url, body, idempotencyKey: `audit-${++n}` });
      assert.ok(res.status >= 200 && res.status < 300, `${operationId} ${method} ${url} → ${res.status} ${res.text}`);
      const requestId = res.headers["x-request-id"] as string;
      const evs = await eventsOf(requestId);
      if (evs.length !== expected) problems.push(`${operationId}: ${evs.length} events (expected ${expected}): ${evs.map((e) => e.event_type).join(", ")}`);
      called.set(operationId, (called.get(operationId) ?? 0) + 1);
      return res;
    }

    it("walks every write operation; each success leaves exactly one event with its request id", async () => {
      const product = (await write("createProduct", "POST", "/api/v1/products", { name: "Audited", code: "audited" })).json.data;
      await write("updateProduct", "PATCH", `/api/v1/products/${product.id}`, { name: "Audited Suite" });
      await write("createProductVersion", "POST", `/api/v1/products/${product.id}/versions`, { version: "1.0.0" });
      const policy = (
        await write("createPolicy", "POST", `/api/v1/products/${product.id}/policies`, { name: "Std", code: "std", license_type: "subscription", max_activations: 3 })
      ).json.data;
      await write("updatePolicy", "PATCH", `/api/v1/policies/${policy.id}`, { max_activations: 4, max_floating_users: 1 });
      const spare = (await write("createPolicy", "POST", `/api/v1/products/${product.id}/policies`, { name: "Spare", code: "spare", license_type: "perpetual" })).json.data;
      await write("deletePolicy", "DELETE", `/api/v1/policies/${spare.id}`);
      const feature = (await write("createFeature", "POST", `/api/v1/products/${product.id}/features`, { name: "Export", code: "export" })).json.data;

      const sub = (
        await write("createSubscription", "POST", `/api/v1/products/${product.id}/subscriptions`, {
          external_system: "stripe",
          external_id: "sub_1",
          status: "active",
          current_period_start: "2026-03-01T00:00:00Z",
          current_period_end: "2026-04-01T00:00:00Z",
        })
      ).json.data;
      await write("updateSubscription", "PATCH", `/api/v1/subscriptions/${sub.id}`, { cancel_at_period_end: true });
      const order = (
        await write("createOrder", "POST", `/api/v1/products/${product.id}/orders`, { external_system: "stripe", external_id: "in_1", status: "paid", subscription_id: sub.id })
      ).json.data;
      await write("updateOrder", "PATCH", `/api/v1/orders/${order.id}`, { status: "fulfilled" });

      const licField = (
        await write("createProductCustomFieldDefinition", "POST", `/api/v1/products/${product.id}/custom-fields`, {
          resource_type: "license",
          code: "seat_label",
          name: "Seat label",
          value_type: "string",
        })
      ).json.data;
      await write("updateProductCustomFieldDefinition", "PATCH", `/api/v1/products/${product.id}/custom-fields/${licField.id}`, { name: "Seat name" });
      const custField = (
        await write("createProductCustomFieldDefinition", "POST", `/api/v1/products/${product.id}/custom-fields`, {
          resource_type: "customer",
          code: "region",
          name: "Region",
          value_type: "enum",
          enum_options: ["eu", "us"],
        })
      ).json.data;

      const customer = (await write("createCustomer", "POST", "/api/v1/customers", { name: "Globex", code: "globex" })).json.data;
      await write("updateCustomer", "PATCH", `/api/v1/customers/${customer.id}`, { email: "ops@globex.example" });
      await write("upsertCustomerCustomFieldValue", "PUT", `/api/v1/customers/${customer.id}/custom-fields/${custField.id}`, { enum_value: "eu" });
      await write("upsertCustomerCustomFieldValue", "PUT", `/api/v1/customers/${customer.id}/custom-fields/${custField.id}`, { clear: true });
      await write("deleteProductCustomFieldDefinition", "DELETE", `/api/v1/products/${product.id}/custom-fields/${custField.id}`);
      const other = (await write("createCustomer", "POST", "/api/v1/customers", { name: "Initech", code: "initech" })).json.data;

      const created = (
        await write("createLicense", "POST", "/api/v1/licenses", { product_id: product.id, policy_id: policy.id, customer_id: customer.id, order_id: order.id })
      ).json.data;
      const lic = created.license;
      assert.equal(lic.subscription_id, sub.id, "the subscription is inferred from the order");
      await write("upsertLicenseCustomFieldValue", "PUT", `/api/v1/licenses/${lic.id}/custom-fields/${licField.id}`, { string_value: "build farm" });
      await write("renewLicense", "POST", `/api/v1/licenses/${lic.id}/renew`, { extend_by_days: 30 });
      await write("transferLicense", "POST", `/api/v1/licenses/${lic.id}/transfer`, { customer_id: other.id });
      await write("suspendLicense", "POST", `/api/v1/licenses/${lic.id}/suspend`);
      await write("reinstateLicense", "POST", `/api/v1/licenses/${lic.id}/reinstate`);
      await write("assignLicenseFeature", "POST", `/api/v1/licenses/${lic.id}/features`, { feature_id: feature.id, max_consumptions: 10 });
      await write("resetLicenseUsage", "POST", `/api/v1/licenses/${lic.id}/usage/reset`, { feature_id: feature.id, add_credits: 5 });
      await write("removeLicenseFeature", "DELETE", `/api/v1/licenses/${lic.id}/features/${feature.id}`);

      for (const fp of ["fp-1", "fp-2"]) {
        const act = await h.request({ url: "/api/v1/license/activate", licenseKey: created.license_key, body: { fingerprint: fp, app_version: "1.0.0" }, idempotencyKey: `act-${fp}` });
        assert.equal(act.status, 200, act.text);
      }
      const checkout = await h.request({
        url: "/api/v1/license/floating/checkout",
        licenseKey: created.license_key,
        body: { fingerprint: "fp-1", app_version: "1.0.0" },
        idempotencyKey: "checkout-1",
      });
      assert.equal(checkout.status, 200, checkout.text);
      const lease = (await h.request({ url: `/api/v1/licenses/${lic.id}/leases` })).json.data[0];
      await write("releaseLicenseLease", "POST", `/api/v1/licenses/${lic.id}/leases/${lease.id}/release`);
      const devices = (await h.request({ url: `/api/v1/licenses/${lic.id}/devices` })).json.data;
      assert.equal(devices.length, 2);
      await write("resetLicenseDevice", "POST", `/api/v1/licenses/${lic.id}/devices/${devices[0].id}/reset`);
      await write("blacklistLicenseDevice", "POST", `/api/v1/licenses/${lic.id}/devices/${devices[1].id}/blacklist`);

      const second = (await write("createLicense", "POST", "/api/v1/licenses", { product_id: product.id, policy_id: policy.id })).json.data.license;
      await write("bulkLicenseAction", "POST", "/api/v1/licenses/bulk", { action: "suspend", license_ids: [lic.id, second.id] }, 2);
      await write("revokeLicense", "POST", `/api/v1/licenses/${lic.id}/revoke`);

      const key = (await write("createAPIKey", "POST", "/api/v1/api-keys", { name: "ci", scopes: ["license:read"] })).json.data;
      await write("rotateAPIKey", "POST", `/api/v1/api-keys/${key.api_key.id}/rotate`);
      await write("revokeAPIKey", "DELETE", `/api/v1/api-keys/${key.api_key.id}`);

      const hook = (await write("createWebhookEndpoint", "POST", "/api/v1/webhooks", { name: "Primary", url: "https://hooks.example.com/lk", event_types: ["license.created"] })).json
        .data;
      const hookId = hook.webhook?.id ?? hook.id;
      // the hook takes license.created: a new license puts one delivery in its outbox to retry
      await write("createLicense", "POST", "/api/v1/licenses", { product_id: product.id, policy_id: policy.id });
      const delivery = (await h.request({ url: `/api/v1/webhooks/${hookId}/deliveries` })).json.data[0];
      await write("retryWebhookDelivery", "POST", `/api/v1/webhooks/${hookId}/deliveries/${delivery.id}/retry`);
      await write("updateWebhookEndpoint", "PATCH", `/api/v1/webhooks/${hookId}`, { is_active: false });
      await write("deleteWebhookEndpoint", "DELETE", `/api/v1/webhooks/${hookId}`);

      // A frozen export: the snapshot row and its event commit together, then the artifact is stored.
      await write("createReportExport", "POST", "/api/v1/reports/exports", { report_kind: "usage-summary", format: "csv", filters: { group_by: "feature_code" } });

      const empty = (await write("createProduct", "POST", "/api/v1/products", { name: "Unused", code: "unused" })).json.data;
      await write("deleteProduct", "DELETE", `/api/v1/products/${empty.id}`);
      await write("deleteCustomer", "DELETE", `/api/v1/customers/${(await write("createCustomer", "POST", "/api/v1/customers", { name: "Gone", code: "gone" })).json.data.id}`);

      assert.deepEqual(problems, []);
      assert.deepEqual(
        writeOps.filter((id) => !called.has(id)),
        [],
        "every write operation of the served document is walked",
      );
    });

    it("a refused write leaves no event, and a replayed write adds none", async () => {
      const before = await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
      const dup = await h.request({ url: "/api/v1/products", body: { name: "Dup", code: "audited" } });
      assert.equal(dup.status, 409);
      const first = await h.request({ url: "/api/v1/customers", body: { name: "Once", code: "once" }, idempotencyKey: "replay-once" });
      assert.equal(first.status, 201);
      const replay = await h.request({ url: "/api/v1/customers", body: { name: "Once", code: "once" }, idempotencyKey: "replay-once" });
      assert.equal(replay.text, first.text);
      const afterCount = await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
      assert.equal(Number(afterCount.n) - Number(before.n), 1);
    });
  });
}
