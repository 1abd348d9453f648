// Subscriptions and orders (NOTES §13) against the contract, and a license's origin linkage on
// createLicense (NOTES §11): same product, order and subscription agree, subscription inferred from
// the order. Each write's audit event is checked.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertContract, assertOperationResponse } from "./helpers/contract.js";
import { ENGINES } from "./helpers/engines.js";
import { type Harness, startHarness } from "./helpers/harness.js";

const UNKNOWN = "x_01AAAAAAAAAAAAAAAAAAAAAAAA";
const START = "2026-03-01T00:00:00.000Z";
const END = "2026-04-01T00:00:00.000Z";

for (const engine of ENGINES) {
  describe(`subscriptions, orders and license origin linkage [${engine}]`, () => {
    let h: Harness;
    let productId = "";
    let otherProductId = "";
    let policyId = "";
    let customerId = "";
    let n = 0;
    const ext = () => `ext-${++n}`;

    before(async () => {
      h = await startHarness(engine);
      productId = (await h.request({ url: "/api/v1/products", body: { name: "Commerce", code: "commerce" } })).json.data.id;
      otherProductId = (await h.request({ url: "/api/v1/products", body: { name: "Other", code: "other" } })).json.data.id;
      policyId = (await h.request({ url: `/api/v1/products/${productId}/policies`, body: { name: "Annual", code: "annual", license_type: "subscription" } })).json
        .data.id;
      customerId = (await h.request({ url: "/api/v1/customers", body: { name: "Initech", code: "initech" } })).json.data.id;
    });
    after(async () => h?.close());

    const events = async (type: string, resourceId: string) =>
      h.lk.store.db.selectFrom("audit_events").selectAll().where("event_type", "=", type).where("resource_id", "=", resourceId).execute();
    const eventCount = async () => Number((await h.lk.store.db.selectFrom("audit_events").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);

    const subscription = (body: Record<string, unknown> = {}, product = productId) =>
      h.request({
        url: `/api/v1/products/${product}/subscriptions`,
        body: { external_system: "stripe", external_id: ext(), status: "active", current_period_start: START, current_period_end: END, ...body },
      });
    const order = (body: Record<string, unknown> = {}, product = productId) =>
      h.request({ url: `/api/v1/products/${product}/orders`, body: { external_system: "stripe", external_id: ext(), status: "paid", ...body } });
    const expectError = (res: { status: number; json: { error?: { code: string; detail?: string } } }, status: number, code: string, detailPart?: string) => {
      assert.equal(res.status, status, JSON.stringify(res.json));
      assert.equal(res.json.error?.code, code);
      if (detailPart) assert.match(res.json.error?.detail ?? "", new RegExp(detailPart));
    };

    describe("subscriptions", () => {
      it("create → get → list match the contract; one subscription.created event", async () => {
        const created = await subscription({ customer_id: customerId, external_id: "sub_A", cancel_at_period_end: true, metadata: { plan: "pro" } });
        assert.equal(created.status, 201, created.text);
        assertOperationResponse("/api/v1/products/{id}/subscriptions", "post", "201", created.json);
        const s = created.json.data;
        assertContract("Subscription", s);
        assert.match(s.id, /^sub_/);
        assert.equal(s.product_id, productId);
        assert.equal(s.customer_id, customerId);
        assert.equal(s.current_period_start, START);
        assert.equal(s.cancel_at_period_end, true);
        assert.equal(s.canceled_at, undefined);
        assert.deepEqual(s.metadata, { plan: "pro" });
        const ev = await events("subscription.created", s.id);
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.resource_type, "subscription");
        assert.equal(JSON.parse(ev[0]!.metadata).product_id, productId);

        const got = await h.request({ url: `/api/v1/subscriptions/${s.id}` });
        assert.equal(got.status, 200);
        assertOperationResponse("/api/v1/subscriptions/{id}", "get", "200", got.json);
        assert.deepEqual(got.json.data, s);

        const second = await subscription();
        assert.equal(second.json.data.cancel_at_period_end, false, "defaults to false");
        assert.equal(second.json.data.customer_id, undefined, "omitted, never null");
        const list = await h.request({ url: `/api/v1/products/${productId}/subscriptions` });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/products/{id}/subscriptions", "get", "200", list.json);
        const ids = list.json.data.map((x: { id: string }) => x.id);
        assert.ok(ids.indexOf(second.json.data.id) < ids.indexOf(s.id), "newest first");
        const page = await h.request({ url: `/api/v1/products/${productId}/subscriptions?limit=1` });
        assert.equal(page.json.data.length, 1);
        assert.ok(page.json.page_info.next_cursor);
        const next = await h.request({ url: `/api/v1/products/${productId}/subscriptions?limit=1&cursor=${page.json.page_info.next_cursor}` });
        assert.equal(next.status, 200);
        assert.notEqual(next.json.data[0].id, page.json.data[0].id);
        const empty = await h.request({ url: `/api/v1/products/${otherProductId}/subscriptions` });
        assert.deepEqual(empty.json.data, []);
      });

      it("createSubscription: 404 unknown product or customer_id, 409 duplicate external id, 422 period and canceled_at, 400 unknown field", async () => {
        expectError(await subscription({}, UNKNOWN), 404, "NOT_FOUND");
        expectError(await subscription({ customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field customer_id");
        assert.equal((await subscription({ external_id: "dup-1" })).status, 201);
        expectError(await subscription({ external_id: "dup-1" }), 409, "CONFLICT", "field external_id");
        assert.equal((await subscription({ external_id: "dup-1", external_system: "paddle" })).status, 201, "another system may reuse the id");
        assert.equal((await subscription({ external_id: "dup-1" }, otherProductId)).status, 201, "another product may reuse the id");
        expectError(await subscription({ current_period_end: START }), 422, "VALIDATION_ERROR", "field current_period_end");
        expectError(await subscription({ current_period_end: "2026-02-01T00:00:00Z" }), 422, "VALIDATION_ERROR", "field current_period_end");
        expectError(await subscription({ canceled_at: END }), 422, "VALIDATION_ERROR", "field canceled_at");
        const canceled = await subscription({ status: "canceled", canceled_at: "2026-03-15T00:00:00Z" });
        assert.equal(canceled.status, 201, canceled.text);
        assert.equal(canceled.json.data.canceled_at, "2026-03-15T00:00:00.000Z");
        expectError(await subscription({ status: "expired" }), 422, "VALIDATION_ERROR", "field status");
        expectError(await subscription({ plan: "x" }), 400, "INVALID_JSON", "plan");
        expectError(await subscription({ current_period_start: "yesterday" }), 422, "VALIDATION_ERROR", "current_period_start");
        const missing = await h.request({ url: `/api/v1/products/${productId}/subscriptions`, body: { external_system: "stripe", status: "active" } });
        expectError(missing, 422, "VALIDATION_ERROR");
        expectError(await h.request({ url: `/api/v1/products/${UNKNOWN}/subscriptions` }), 404, "NOT_FOUND");
        expectError(await h.request({ url: `/api/v1/subscriptions/${UNKNOWN}` }), 404, "NOT_FOUND");
      });

      it("updateSubscription: changes fields, clears the customer link with '', records subscription.updated with the fields", async () => {
        const s = (await subscription({ customer_id: customerId })).json.data;
        const res = await h.request({
          method: "PATCH",
          url: `/api/v1/subscriptions/${s.id}`,
          body: { status: "canceled", canceled_at: "2026-03-20T00:00:00Z", customer_id: "", metadata: { reason: "churn" } },
        });
        assert.equal(res.status, 200, res.text);
        assertOperationResponse("/api/v1/subscriptions/{id}", "patch", "200", res.json);
        assert.equal(res.json.data.status, "canceled");
        assert.equal(res.json.data.canceled_at, "2026-03-20T00:00:00.000Z");
        assert.equal(res.json.data.customer_id, undefined);
        assert.deepEqual(res.json.data.metadata, { reason: "churn" });
        assert.equal(res.json.data.created_at, s.created_at);
        const ev = await events("subscription.updated", s.id);
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).fields.sort(), ["canceled_at", "customer_id", "metadata", "status"]);
        const got = await h.request({ url: `/api/v1/subscriptions/${s.id}` });
        assert.deepEqual(got.json.data, res.json.data);

        // Reactivating drops the cancellation time; re-linking a customer works.
        const again = await h.request({ method: "PATCH", url: `/api/v1/subscriptions/${s.id}`, body: { status: "active", customer_id: customerId } });
        assert.equal(again.status, 200, again.text);
        assert.equal(again.json.data.canceled_at, undefined);
        assert.equal(again.json.data.customer_id, customerId);

        // A patch that changes nothing answers the record and records no event.
        const before = await eventCount();
        const same = await h.request({ method: "PATCH", url: `/api/v1/subscriptions/${s.id}`, body: { status: "active" } });
        assert.equal(same.status, 200);
        assert.deepEqual(same.json.data, again.json.data);
        assert.equal(await eventCount(), before);
      });

      it("updateSubscription: 404 unknown id or customer, 409 duplicate external id, 422 period and canceled_at, 400 unknown field", async () => {
        const a = (await subscription({ external_id: "patch-a" })).json.data;
        const b = (await subscription({ external_id: "patch-b" })).json.data;
        const patch = (id: string, body: unknown) => h.request({ method: "PATCH", url: `/api/v1/subscriptions/${id}`, body });
        expectError(await patch(UNKNOWN, { status: "paused" }), 404, "NOT_FOUND");
        expectError(await patch(a.id, { customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field customer_id");
        expectError(await patch(b.id, { external_id: "patch-a" }), 409, "CONFLICT", "field external_id");
        expectError(await patch(a.id, { current_period_end: "2026-02-01T00:00:00Z" }), 422, "VALIDATION_ERROR", "field current_period_end");
        expectError(await patch(a.id, { current_period_start: END }), 422, "VALIDATION_ERROR", "field current_period_end");
        expectError(await patch(a.id, { canceled_at: END }), 422, "VALIDATION_ERROR", "field canceled_at");
        expectError(await patch(a.id, { product_id: otherProductId }), 400, "INVALID_JSON", "product_id");
        expectError(await patch(a.id, { cancel_at_period_end: "yes" }), 400, "INVALID_JSON", "cancel_at_period_end");
        const unchanged = await h.request({ url: `/api/v1/subscriptions/${a.id}` });
        assert.deepEqual(unchanged.json.data, a, "refused patches change nothing");
        assert.equal((await events("subscription.updated", a.id)).length, 0);
      });

      it("concurrent creates of one external id: one 201, the rest 409 CONFLICT, never 500", async () => {
        const body = { external_system: "stripe", external_id: "race-1", status: "active", current_period_start: START, current_period_end: END };
        const url = `/api/v1/products/${productId}/subscriptions`;
        const answers = await Promise.all(Array.from({ length: 6 }, () => h.request({ url, body })));
        assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409, 409]);
        for (const a of answers.filter((x) => x.status === 409)) assert.equal(a.json.error.code, "CONFLICT");
        const orders = await Promise.all(
          Array.from({ length: 6 }, () => h.request({ url: `/api/v1/products/${productId}/orders`, body: { external_system: "stripe", external_id: "race-2", status: "paid" } })),
        );
        assert.deepEqual(orders.map((a) => a.status).sort(), [201, 409, 409, 409, 409, 409]);
      });

      it("an idempotent create replays the stored answer", async () => {
        const body = { external_system: "stripe", external_id: "idem-sub", status: "trialing", current_period_start: START, current_period_end: END };
        const url = `/api/v1/products/${productId}/subscriptions`;
        const first = await h.request({ url, body, idempotencyKey: "sub-create-1" });
        assert.equal(first.status, 201);
        const replay = await h.request({ url, body, idempotencyKey: "sub-create-1" });
        assert.equal(replay.status, 201);
        assert.equal(replay.headers["idempotent-replayed"], "true");
        assert.equal(replay.text, first.text);
        assert.equal((await events("subscription.created", first.json.data.id)).length, 1);
      });
    });

    describe("orders", () => {
      it("create → get → list match the contract; one order.created event", async () => {
        const sub = (await subscription()).json.data;
        const created = await order({
          customer_id: customerId,
          subscription_id: sub.id,
          external_id: "in_100",
          period_start: START,
          period_end: END,
          metadata: { invoice: "100" },
        });
        assert.equal(created.status, 201, created.text);
        assertOperationResponse("/api/v1/products/{id}/orders", "post", "201", created.json);
        const o = created.json.data;
        assertContract("Order", o);
        assert.match(o.id, /^ord_/);
        assert.equal(o.subscription_id, sub.id);
        assert.equal(o.customer_id, customerId);
        assert.equal(o.period_end, END);
        const ev = await events("order.created", o.id);
        assert.equal(ev.length, 1);
        assert.equal(ev[0]!.resource_type, "order");

        const got = await h.request({ url: `/api/v1/orders/${o.id}` });
        assert.equal(got.status, 200);
        assertOperationResponse("/api/v1/orders/{id}", "get", "200", got.json);
        assert.deepEqual(got.json.data, o);

        const bare = await order();
        assert.equal(bare.status, 201);
        for (const k of ["customer_id", "subscription_id", "period_start", "period_end"]) assert.equal(bare.json.data[k], undefined, `${k} omitted`);
        const list = await h.request({ url: `/api/v1/products/${productId}/orders` });
        assert.equal(list.status, 200);
        assertOperationResponse("/api/v1/products/{id}/orders", "get", "200", list.json);
        assert.equal(list.json.data[0].id, bare.json.data.id, "newest first");
        assert.ok(list.json.data.some((x: { id: string }) => x.id === o.id));
      });

      it("createOrder: 404 unknown product, customer_id or subscription_id, 422 other product's subscription and periods, 409 duplicate, 400", async () => {
        const foreign = (await subscription({}, otherProductId)).json.data;
        expectError(await order({}, UNKNOWN), 404, "NOT_FOUND");
        expectError(await order({ customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field customer_id");
        expectError(await order({ subscription_id: "sub_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field subscription_id");
        expectError(await order({ subscription_id: foreign.id }), 422, "VALIDATION_ERROR", "field subscription_id");
        expectError(await order({ period_start: START }), 422, "VALIDATION_ERROR", "field period_end");
        expectError(await order({ period_end: END }), 422, "VALIDATION_ERROR", "field period_start");
        expectError(await order({ period_start: END, period_end: START }), 422, "VALIDATION_ERROR", "field period_end");
        expectError(await order({ status: "shipped" }), 422, "VALIDATION_ERROR", "field status");
        assert.equal((await order({ external_id: "in_dup" })).status, 201);
        expectError(await order({ external_id: "in_dup" }), 409, "CONFLICT", "field external_id");
        expectError(await order({ amount: 10 }), 400, "INVALID_JSON", "amount");
        expectError(await h.request({ url: `/api/v1/products/${UNKNOWN}/orders` }), 404, "NOT_FOUND");
        expectError(await h.request({ url: `/api/v1/orders/${UNKNOWN}` }), 404, "NOT_FOUND");
      });

      it("updateOrder: changes fields, '' clears links, records order.updated; 404, 409, 422, 400", async () => {
        const sub = (await subscription()).json.data;
        const o = (await order({ customer_id: customerId, subscription_id: sub.id, external_id: "in_upd" })).json.data;
        const patch = (id: string, body: unknown) => h.request({ method: "PATCH", url: `/api/v1/orders/${id}`, body });
        const res = await patch(o.id, { status: "refunded", customer_id: "", subscription_id: "", period_start: START, period_end: END });
        assert.equal(res.status, 200, res.text);
        assertOperationResponse("/api/v1/orders/{id}", "patch", "200", res.json);
        assert.equal(res.json.data.status, "refunded");
        assert.equal(res.json.data.customer_id, undefined);
        assert.equal(res.json.data.subscription_id, undefined);
        assert.equal(res.json.data.period_start, START);
        const ev = await events("order.updated", o.id);
        assert.equal(ev.length, 1);
        assert.deepEqual(JSON.parse(ev[0]!.metadata).fields.sort(), ["customer_id", "period_end", "period_start", "status", "subscription_id"]);
        const relinked = await patch(o.id, { subscription_id: sub.id, period_end: "2026-05-01T00:00:00Z" });
        assert.equal(relinked.status, 200, relinked.text);
        assert.equal(relinked.json.data.subscription_id, sub.id);

        const foreign = (await subscription({}, otherProductId)).json.data;
        const bare = (await order({ external_id: "in_bare" })).json.data;
        expectError(await patch(UNKNOWN, { status: "paid" }), 404, "NOT_FOUND");
        expectError(await patch(o.id, { subscription_id: "sub_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field subscription_id");
        expectError(await patch(o.id, { customer_id: "cust_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field customer_id");
        expectError(await patch(o.id, { subscription_id: foreign.id }), 422, "VALIDATION_ERROR", "field subscription_id");
        expectError(await patch(bare.id, { period_end: END }), 422, "VALIDATION_ERROR", "field period_start");
        expectError(await patch(o.id, { period_end: START }), 422, "VALIDATION_ERROR", "field period_end");
        expectError(await patch(bare.id, { external_id: "in_upd" }), 409, "CONFLICT", "field external_id");
        expectError(await patch(o.id, { product_id: otherProductId }), 400, "INVALID_JSON", "product_id");
        assert.equal((await events("order.updated", bare.id)).length, 0);
      });
    });

    describe("createLicense origin linkage", () => {
      const license = (body: Record<string, unknown>) => h.request({ url: "/api/v1/licenses", body: { product_id: productId, policy_id: policyId, ...body } });

      it("stores order_id and subscription_id; infers the subscription from the order", async () => {
        const sub = (await subscription()).json.data;
        const linkedOrder = (await order({ subscription_id: sub.id })).json.data;
        const plainOrder = (await order()).json.data;

        const inferred = await license({ order_id: linkedOrder.id });
        assert.equal(inferred.status, 201, inferred.text);
        assertContract("License", inferred.json.data.license);
        assert.equal(inferred.json.data.license.order_id, linkedOrder.id);
        assert.equal(inferred.json.data.license.subscription_id, sub.id, "inferred from the order");
        const got = await h.request({ url: `/api/v1/licenses/${inferred.json.data.license.id}` });
        assert.equal(got.json.data.subscription_id, sub.id);
        assert.equal((await events("license.created", inferred.json.data.license.id)).length, 1);

        const both = await license({ order_id: linkedOrder.id, subscription_id: sub.id });
        assert.equal(both.status, 201, both.text);
        assert.equal(both.json.data.license.subscription_id, sub.id);

        const subOnly = await license({ subscription_id: sub.id });
        assert.equal(subOnly.status, 201, subOnly.text);
        assert.equal(subOnly.json.data.license.order_id, undefined);
        assert.equal(subOnly.json.data.license.subscription_id, sub.id);

        const orderOnly = await license({ order_id: plainOrder.id });
        assert.equal(orderOnly.status, 201, orderOnly.text);
        assert.equal(orderOnly.json.data.license.order_id, plainOrder.id);
        assert.equal(orderOnly.json.data.license.subscription_id, undefined);

        const unlinkedOrderWithSub = await license({ order_id: plainOrder.id, subscription_id: sub.id });
        assert.equal(unlinkedOrderWithSub.status, 201, "an order without a subscription link does not contradict one");

        const bySub = await h.request({ url: `/api/v1/licenses?subscription_id=${sub.id}` });
        assert.equal(bySub.json.data.length, 4);
        const byOrder = await h.request({ url: `/api/v1/licenses?order_id=${linkedOrder.id}` });
        assert.equal(byOrder.json.data.length, 2);
      });

      it("404 naming the field for unknown ids; 422 for another product's records or an order linked to another subscription", async () => {
        const sub = (await subscription()).json.data;
        const otherSub = (await subscription()).json.data;
        const linkedOrder = (await order({ subscription_id: sub.id })).json.data;
        const foreignSub = (await subscription({}, otherProductId)).json.data;
        const foreignOrder = (await order({}, otherProductId)).json.data;
        const before = await eventCount();
        expectError(await license({ order_id: "ord_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field order_id");
        expectError(await license({ subscription_id: "sub_01AAAAAAAAAAAAAAAAAAAAAAAA" }), 404, "NOT_FOUND", "field subscription_id");
        expectError(await license({ order_id: foreignOrder.id }), 422, "VALIDATION_ERROR", "field order_id");
        expectError(await license({ subscription_id: foreignSub.id }), 422, "VALIDATION_ERROR", "field subscription_id");
        expectError(await license({ order_id: linkedOrder.id, subscription_id: otherSub.id }), 422, "VALIDATION_ERROR", "field subscription_id");
        assert.equal(await eventCount(), before, "refused creates record nothing");
      });
    });
  });
}
