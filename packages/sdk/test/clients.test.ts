// The three clients against a real server on a local port (SQLite): a scripted flow calls EVERY
// operation of the generated table at least once through the SDK, then the errors, hooks and options.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { ADMIN_TOKEN, type Harness, listen, startHarness } from "../../server/test/helpers/harness.js";
import {
  ApiError,
  type ErrorHookEvent,
  ManagementClient,
  OPERATIONS,
  type RequestHookEvent,
  RuntimeClient,
  SignatureVerificationError,
  SystemClient,
  TransportError,
  UNKNOWN_ERROR,
} from "../src/index.js";
import { rejectsWith } from "./helpers/assertions.js";

const REQUEST_ID = /^req_/;

function assertMeta(res: { meta: { request_id: string; timestamp: string } }): void {
  assert.match(res.meta.request_id, REQUEST_ID);
  assert.ok(!Number.isNaN(Date.parse(res.meta.timestamp)));
}

function assertSigned(res: { signature: { alg: string; kid: string; value: string } }): void {
  assert.equal(res.signature.alg, "Ed25519");
  assert.match(res.signature.kid, /^k_/);
  assert.ok(res.signature.value.length > 40);
}

describe("clients against a real server", () => {
  let h: Harness;
  let baseUrl: string;
  const counts = new Map<string, number>();
  const requestEvents: RequestHookEvent[] = [];
  const errorEvents: ErrorHookEvent[] = [];
  const secrets: string[] = [ADMIN_TOKEN];
  const hooks = {
    onRequest: (e: RequestHookEvent) => {
      requestEvents.push(e);
      counts.set(e.operation, (counts.get(e.operation) ?? 0) + 1);
    },
    onError: (e: ErrorHookEvent) => errorEvents.push(e),
  };

  before(async () => {
    h = await startHarness("sqlite");
    baseUrl = await listen(h);
  });
  after(async () => h?.close());

  it("calls every operation of the table at least once", async () => {
    const system = new SystemClient({ baseUrl, ...hooks });
    const admin = new ManagementClient({ baseUrl, token: ADMIN_TOKEN, ...hooks });

    // ---- system
    const health = await system.health();
    assert.equal(health.data.status, "ok");
    assertMeta(health);
    assert.equal((await system.healthz()).data.status, "ok");
    const ready = await system.readyz();
    assert.equal(ready.data.status, "ready");
    const metrics = await system.getMetrics();
    assert.equal(typeof metrics, "string");
    assert.match(metrics, /^# (HELP|TYPE) /m);
    const keys = await system.listPublicKeys();
    assert.ok(keys.data.length >= 1);
    assert.equal(keys.data[0]?.algorithm, "Ed25519");

    // ---- API keys (admin): a scoped key for the rest, rotated once
    const created = await admin.createAPIKey({
      body: { name: "sdk-test", scopes: ["product:read", "product:write", "license:read", "license:write", "device:write", "event:read", "webhook:write", "report:read", "report:export", "ops:read"] },
    });
    assert.equal(created.data.api_key.name, "sdk-test");
    const apiKeyId = created.data.api_key.id;
    secrets.push(created.data.token);
    const keyList = await admin.listAPIKeys({ query: { limit: 200 } });
    assert.ok(keyList.data.some((k) => k.id === apiKeyId));
    assert.ok("next_cursor" in keyList.page_info);
    const rotated = await admin.rotateAPIKey({ path: { id: apiKeyId } });
    assert.notEqual(rotated.data.token, created.data.token);
    secrets.push(rotated.data.token);
    const stale = new ManagementClient({ baseUrl, token: created.data.token, ...hooks });
    const staleErr = await rejectsWith(stale.listProducts(), ApiError);
    assert.equal(staleErr.status, 401);
    assert.equal(staleErr.code, "UNAUTHORIZED");
    const mgmt = new ManagementClient({ baseUrl, token: rotated.data.token, ...hooks });

    // ---- catalogue
    const product = await mgmt.createProduct({ body: { name: "Acme Desktop", code: "acme-desktop", metadata: { team: "desktop" } } });
    assertMeta(product);
    const productId = product.data.id;
    const products = await mgmt.listProducts({ query: { limit: 10 } });
    assert.ok(products.data.some((p) => p.id === productId));
    assert.equal(products.page_info.next_cursor, null);
    assert.equal((await mgmt.getProduct({ path: { id: productId } })).data.code, "acme-desktop");
    assert.equal((await mgmt.updateProduct({ path: { id: productId }, body: { name: "Acme Desktop 2" } })).data.name, "Acme Desktop 2");

    const policy = await mgmt.createPolicy({
      path: { id: productId },
      body: { name: "Annual", code: "annual", license_type: "subscription", max_activations: 5, max_floating_users: 1, allow_offline_activation: true, offline_grace_days: 7 },
    });
    const policyId = policy.data.id;
    assert.ok((await mgmt.listPoliciesByProduct({ path: { id: productId } })).data.some((p) => p.id === policyId));
    assert.equal((await mgmt.getPolicy({ path: { id: policyId } })).data.code, "annual");
    assert.equal((await mgmt.updatePolicy({ path: { id: policyId }, body: { validation_interval_minutes: 60 } })).data.validation_interval_minutes, 60);
    const spare = await mgmt.createPolicy({ path: { id: productId }, body: { name: "Spare", code: "spare", license_type: "perpetual" } });
    assert.equal(await mgmt.deletePolicy({ path: { id: spare.data.id } }), undefined);

    const feature = await mgmt.createFeature({ path: { id: productId }, body: { name: "PDF export", code: "pdf.export" } });
    const featureId = feature.data.id;
    assert.ok((await mgmt.listFeaturesByProduct({ path: { id: productId } })).data.some((f) => f.id === featureId));
    assert.equal((await mgmt.getFeature({ path: { id: featureId } })).data.code, "pdf.export");

    // versions on another product (a catalogue turns version gating on for that product's licenses)
    const versioned = await mgmt.createProduct({ body: { name: "Versioned", code: "versioned" } });
    const version = await mgmt.createProductVersion({ path: { id: versioned.data.id }, body: { version: "1.0.0" } });
    assert.equal(version.data.version, "1.0.0");
    assert.ok((await mgmt.listProductVersions({ path: { id: versioned.data.id } })).data.some((v) => v.version === "1.0.0"));
    const doomed = await mgmt.createProduct({ body: { name: "Doomed", code: "doomed" } });
    assert.equal(await mgmt.deleteProduct({ path: { id: doomed.data.id } }), undefined);

    // ---- customers (admin only)
    const customer = await admin.createCustomer({ body: { name: "Globex", code: "globex", email: "it@globex.test" } });
    const customerId = customer.data.id;
    assert.ok((await admin.listCustomers()).data.some((c) => c.id === customerId));
    assert.equal((await admin.getCustomer({ path: { id: customerId } })).data.code, "globex");
    assert.equal((await admin.updateCustomer({ path: { id: customerId }, body: { email: "ops@globex.test" } })).data.email, "ops@globex.test");
    const gone = await admin.createCustomer({ body: { name: "Gone", code: "gone" } });
    assert.equal(await admin.deleteCustomer({ path: { id: gone.data.id } }), undefined);

    // ---- commerce
    const sub = await mgmt.createSubscription({
      path: { id: productId },
      body: {
        customer_id: customerId,
        external_system: "stripe",
        external_id: "sub_1",
        status: "active",
        current_period_start: "2026-03-01T00:00:00Z",
        current_period_end: "2026-04-01T00:00:00Z",
      },
    });
    assert.ok((await mgmt.listProductSubscriptions({ path: { id: productId } })).data.some((s) => s.id === sub.data.id));
    assert.equal((await mgmt.getSubscription({ path: { id: sub.data.id } })).data.external_id, "sub_1");
    assert.equal((await mgmt.updateSubscription({ path: { id: sub.data.id }, body: { status: "past_due" } })).data.status, "past_due");
    const order = await mgmt.createOrder({ path: { id: productId }, body: { customer_id: customerId, external_system: "stripe", external_id: "in_1", status: "paid" } });
    assert.ok((await mgmt.listProductOrders({ path: { id: productId } })).data.some((o) => o.id === order.data.id));
    assert.equal((await mgmt.getOrder({ path: { id: order.data.id } })).data.status, "paid");
    assert.equal((await mgmt.updateOrder({ path: { id: order.data.id }, body: { status: "fulfilled" } })).data.status, "fulfilled");

    // ---- custom field definitions
    const licField = await mgmt.createProductCustomFieldDefinition({
      path: { id: productId },
      body: { resource_type: "license", code: "seat_note", name: "Seat note", value_type: "string" },
    });
    const custField = await mgmt.createProductCustomFieldDefinition({
      path: { id: productId },
      body: { resource_type: "customer", code: "tier", name: "Tier", value_type: "string" },
    });
    assert.ok((await mgmt.listProductCustomFieldDefinitions({ path: { id: productId } })).data.length >= 2);
    assert.equal((await mgmt.getProductCustomFieldDefinition({ path: { id: productId, field_id: licField.data.id } })).data.code, "seat_note");
    assert.equal(
      (await mgmt.updateProductCustomFieldDefinition({ path: { id: productId, field_id: licField.data.id }, body: { name: "Seat" } })).data.name,
      "Seat",
    );
    const tmpField = await mgmt.createProductCustomFieldDefinition({ path: { id: productId }, body: { resource_type: "license", code: "tmp", name: "Tmp", value_type: "boolean" } });
    assert.equal(await mgmt.deleteProductCustomFieldDefinition({ path: { id: productId, field_id: tmpField.data.id } }), undefined);
    const custValue = await admin.upsertCustomerCustomFieldValue({ path: { id: customerId, field_id: custField.data.id }, body: { string_value: "gold" } });
    assert.equal(custValue?.data.string_value, "gold");
    assert.ok((await admin.listCustomerCustomFieldValues({ path: { id: customerId } })).data.some((v) => v.code === "tier"));

    // ---- licenses
    const license = await mgmt.createLicense({ body: { product_id: productId, policy_id: policyId, customer_id: customerId, expires_at: "2027-01-01T00:00:00.000Z" } });
    const licenseId = license.data.license.id;
    const licenseKey = license.data.license_key;
    secrets.push(licenseKey);
    assert.ok((await mgmt.listLicenses({ query: { product_id: productId } })).data.some((l) => l.id === licenseId));
    assert.equal((await mgmt.getLicense({ path: { id: licenseId } })).data.status, "active");
    const licValue = await mgmt.upsertLicenseCustomFieldValue({ path: { id: licenseId, field_id: licField.data.id }, body: { string_value: "desk 4" } });
    assert.equal(licValue?.data.string_value, "desk 4");
    assert.ok((await mgmt.listLicenseCustomFieldValues({ path: { id: licenseId } })).data.some((v) => v.code === "seat_note"));
    const assigned = await mgmt.assignLicenseFeature({ path: { id: licenseId }, body: { feature_id: featureId, max_consumptions: 10 } });
    assert.equal(assigned.data.feature_code, "pdf.export");
    assert.ok((await mgmt.listLicenseFeatures({ path: { id: licenseId } })).data.some((f) => f.feature_id === featureId));

    // ---- runtime
    const runtime = new RuntimeClient({ baseUrl, licenseKey, ...hooks });
    const activated = await runtime.activateLicense({ body: { fingerprint: "dev-A", hostname: "build-01" } });
    assertSigned(activated);
    assertMeta(activated);
    assert.equal(activated.data.license_id, licenseId);
    const validated = await runtime.validateLicense({ body: { fingerprint: "dev-A" } });
    assertSigned(validated);
    assert.equal(validated.data.status, "active");
    assert.ok(validated.data.next_check_at);
    assertSigned(await runtime.checkLicense({ body: { fingerprint: "dev-A" } }));
    const consumed = await runtime.consumeLicense({ body: { fingerprint: "dev-A", feature_code: "pdf.export", amount: 2, event_id: "job-1" } });
    assertSigned(consumed);
    assert.equal(consumed.data.features.find((f) => f.code === "pdf.export")?.consumed, 2);
    // a refused consume leaves a usage.quota_exceeded event: the denial the ops view groups below
    const overQuota = await rejectsWith(runtime.consumeLicense({ body: { fingerprint: "dev-A", feature_code: "pdf.export", amount: 50, event_id: "job-2" } }), ApiError);
    assert.equal(overQuota.code, "FEATURE_QUOTA_EXCEEDED");
    const usage = await mgmt.resetLicenseUsage({ path: { id: licenseId }, body: { feature_id: featureId, reset_consumed: true } });
    assert.equal(usage.data.total_consumptions, 0);
    const offline = await runtime.issueOfflineLicense({ body: { fingerprint: "dev-A" } });
    assert.match(offline.data.kid, /^k_/);
    assert.ok(offline.data.ciphertext.length > 0);
    const lease = await runtime.checkoutFloatingLicense({ body: { fingerprint: "dev-A" } });
    assertSigned(lease);
    const beat = await runtime.heartbeatFloatingLicense({ body: { lease_token: lease.data.lease_token } });
    assertSigned(beat);
    assertSigned(await runtime.checkinFloatingLicense({ body: { lease_token: lease.data.lease_token } }));
    const lease2 = await runtime.checkoutFloatingLicense({ body: { fingerprint: "dev-A" } });
    secrets.push(lease2.data.lease_token);
    const leases = await mgmt.listLicenseLeases({ path: { id: licenseId }, query: { status: "active" } });
    const activeLease = leases.data.find((l) => l.status === "active");
    assert.ok(activeLease);
    assert.equal((await mgmt.releaseLicenseLease({ path: { id: licenseId, lease_id: activeLease.id } })).data.status, "released");

    // ---- devices
    await runtime.activateLicense({ body: { fingerprint: "dev-B" } });
    await runtime.activateLicense({ body: { fingerprint: "dev-C" } });
    const devices = await mgmt.listLicenseDevices({ path: { id: licenseId } });
    const devB = devices.data.find((d) => d.fingerprint === "dev-B");
    const devC = devices.data.find((d) => d.fingerprint === "dev-C");
    assert.ok(devB && devC);
    assert.equal((await mgmt.getLicenseDevice({ path: { id: licenseId, device_id: devB.id } })).data.fingerprint, "dev-B");
    assert.equal((await mgmt.resetLicenseDevice({ path: { id: licenseId, device_id: devB.id } })).data.id, devB.id);
    assert.equal((await mgmt.blacklistLicenseDevice({ path: { id: licenseId, device_id: devC.id } })).data.status, "blacklisted");
    assert.equal(await mgmt.removeLicenseFeature({ path: { id: licenseId, feature_id: featureId } }), undefined);

    // ---- lifecycle
    const transferred = await mgmt.transferLicense({ path: { id: licenseId }, body: { customer_email: "new@globex.test", customer_name: "New Owner" } });
    assert.equal(transferred.data.customer_email, "new@globex.test");
    const renewed = await mgmt.renewLicense({ path: { id: licenseId }, body: { extend_by_days: 30 }, idempotencyKey: "renew-flow-1" });
    assert.equal(renewed.data.expires_at, "2027-01-31T00:00:00.000Z");
    assert.equal((await mgmt.suspendLicense({ path: { id: licenseId } })).data.status, "suspended");
    const inactive = await rejectsWith(runtime.validateLicense({ body: { fingerprint: "dev-A" } }), ApiError);
    assert.equal(inactive.status, 403);
    assert.equal(inactive.code, "LICENSE_INACTIVE");
    assert.equal(inactive.operation, "validateLicense");
    assert.equal(inactive.signature?.alg, "Ed25519");
    assert.equal(inactive.envelope?.error.code, "LICENSE_INACTIVE");
    assert.equal((await mgmt.reinstateLicense({ path: { id: licenseId } })).data.status, "active");
    const deactivated = await runtime.deactivateLicense({ body: { fingerprint: "dev-A" } });
    assertSigned(deactivated);

    const second = await mgmt.createLicense({ body: { product_id: productId, policy_id: policyId } });
    const bulk = await mgmt.bulkLicenseAction({ body: { action: "suspend", license_ids: [second.data.license.id] } });
    assert.equal(bulk.data.succeeded, 1);
    assert.equal((await mgmt.revokeLicense({ path: { id: second.data.license.id } })).data.status, "revoked");

    // ---- reporting reads (the license consumed 2 units of pdf.export as "job-1"; its quota refusal is a denied activity)
    const activities = await mgmt.listActivities({ query: { license_id: licenseId, limit: 200 } });
    const consumeActivity = activities.data.find((a) => a.action === "usage.consumed");
    assert.ok(consumeActivity);
    assert.equal(consumeActivity.source, "runtime");
    assert.equal(consumeActivity.feature_code, "pdf.export");
    assert.equal(consumeActivity.result_class, "success");
    const deniedActivities = await mgmt.listActivities({ query: { license_id: licenseId, result_class: "denied", status_code: 409 } });
    assert.deepEqual(
      deniedActivities.data.map((a) => [a.action, a.error_code]),
      [["usage.quota_exceeded", "FEATURE_QUOTA_EXCEEDED"]],
    );
    const usageSummary = await mgmt.getUsageSummary({ query: { product_id: productId, group_by: "feature_code" } });
    assert.equal(usageSummary.data.totals.consumed_amount, 2);
    assert.equal(usageSummary.data.totals.consume_count, 1);
    assert.deepEqual(
      usageSummary.data.rows.map((r) => [r.group, r.consumed_amount]),
      [["pdf.export", 2]],
    );
    const ledger = await mgmt.listUsageLedger({ query: { license_id: licenseId } });
    assert.equal(ledger.data.length, 1);
    const ledgerRow = ledger.data[0];
    assert.ok(ledgerRow);
    assert.equal(ledgerRow.event_id, "job-1");
    assert.equal(ledgerRow.amount, 2);
    assert.equal(ledger.page_info.next_cursor, null);
    const licenseAudit = await mgmt.getLicenseAudit({ query: { license_id: licenseId } });
    assert.equal(licenseAudit.data.license.id, licenseId);
    assert.equal(licenseAudit.data.usage.totals.consumed_amount, 2);
    assert.ok(licenseAudit.data.events.total >= 1);
    const customerSummary = await mgmt.getCustomerSummary({ query: { customer_id: customerId } });
    assert.equal(customerSummary.data.customer.id, customerId);
    const settlement = await mgmt.getSubscriptionSettlement({ query: { subscription_id: sub.data.id } });
    assert.equal(settlement.data.subscription?.id, sub.data.id);
    assert.equal(settlement.data.group_by, "license_id");

    // ---- report exports: a download resolves to the stored bytes (Uint8Array) whatever the format
    const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
    const pdfExport = await mgmt.createReportExport({ body: { report_kind: "usage-ledger", format: "pdf", filters: { license_id: licenseId } } });
    assert.equal(pdfExport.data.status, "ready");
    assert.equal(pdfExport.data.content_type, "application/pdf");
    assert.match(pdfExport.data.artifact_digest ?? "", /^[0-9a-f]{64}$/);
    const pdf = await mgmt.downloadReportExport({ path: { id: pdfExport.data.id } });
    assert.ok(pdf instanceof Uint8Array);
    assert.equal(Buffer.from(pdf.subarray(0, 5)).toString("latin1"), "%PDF-");
    assert.equal(sha256(pdf), pdfExport.data.artifact_digest);

    const jsonExport = await mgmt.createReportExport({ body: { report_kind: "usage-ledger", filters: { license_id: licenseId } } });
    assert.equal(jsonExport.data.format, "json");
    const jsonBytes = await mgmt.downloadReportExport({ path: { id: jsonExport.data.id } });
    assert.ok(jsonBytes instanceof Uint8Array);
    assert.equal(sha256(jsonBytes), jsonExport.data.artifact_digest);
    assert.equal(jsonExport.data.artifact_digest, jsonExport.data.digest);
    const snapshot = JSON.parse(new TextDecoder().decode(jsonBytes)) as { report_kind: string; table: { columns: string[]; rows: unknown[][] } };
    assert.equal(snapshot.report_kind, "usage-ledger");

    const csvExport = await mgmt.createReportExport({ body: { report_kind: "usage-ledger", format: "csv", filters: { license_id: licenseId } } });
    assert.equal(csvExport.data.content_type, "text/csv; charset=utf-8");
    const csv = await mgmt.downloadReportExport({ path: { id: csvExport.data.id } });
    assert.ok(csv instanceof Uint8Array, "a CSV download is bytes too, not a string");
    assert.equal(sha256(csv), csvExport.data.artifact_digest);
    assert.equal(csvExport.data.digest, jsonExport.data.digest, "the same data gives the same snapshot digest");
    const cell = (v: unknown) => (v === null || v === undefined ? "" : String(v));
    const ledgerRecord = ledgerRow as unknown as Record<string, unknown>;
    assert.equal(
      new TextDecoder().decode(csv),
      `${snapshot.table.columns.join(",")}\r\n${snapshot.table.columns.map((c) => cell(ledgerRecord[c])).join(",")}\r\n`,
    );

    const exportList = await mgmt.listReportExports({ query: { limit: 10 } });
    assert.deepEqual(
      exportList.data.map((x) => x.id),
      [csvExport.data.id, jsonExport.data.id, pdfExport.data.id],
    );
    const fetchedExport = await mgmt.getReportExport({ path: { id: pdfExport.data.id } });
    assert.equal(fetchedExport.data.artifact_digest, pdfExport.data.artifact_digest);
    assert.equal(fetchedExport.data.download_url, `/api/v1/reports/exports/${pdfExport.data.id}/download`);

    // ---- webhooks and events
    const created_ = await mgmt.createWebhookEndpoint({ body: { name: "ops", url: "https://hooks.example.com/licensekit", event_types: ["license.created"] } });
    assert.match(created_.data.secret, /^whsec_/);
    secrets.push(created_.data.secret);
    const hook = { data: created_.data.webhook };
    // a license created while the endpoint listens for license.created queues one delivery (the
    // harness runs no delivery worker, so it stays pending)
    const third = await mgmt.createLicense({ body: { product_id: productId, policy_id: policyId } });
    const deliveries = await mgmt.listWebhookDeliveries({ path: { id: hook.data.id }, query: { status: "pending", limit: 10 } });
    assert.equal(deliveries.data.length, 1);
    assert.equal(deliveries.page_info.next_cursor, null);
    const delivery = deliveries.data[0];
    assert.ok(delivery);
    assert.equal(delivery.webhook_id, hook.data.id);
    assert.equal(delivery.event_type, "license.created");
    assert.equal(delivery.attempts, 0);
    const retried = await mgmt.retryWebhookDelivery({ path: { id: hook.data.id, delivery_id: delivery.id } });
    assert.equal(retried.data.id, delivery.id);
    assert.equal(retried.data.status, "pending");
    assert.equal(retried.data.event_sequence, delivery.event_sequence);
    const licenseCreated = await mgmt.listEvents({ query: { resource_id: third.data.license.id, limit: 200 } });
    assert.ok(licenseCreated.data.some((e) => e.sequence === delivery.event_sequence && e.event_type === "license.created"));

    // ---- ops view
    const webhookHealth = await mgmt.getOpsWebhookHealth();
    const endpointHealth = webhookHealth.data.endpoints.find((e) => e.id === hook.data.id);
    assert.ok(endpointHealth);
    assert.equal(endpointHealth.url, "https://hooks.example.com/licensekit");
    assert.equal(endpointHealth.pending, 1);
    assert.equal(endpointHealth.failed, 0);
    assert.equal(webhookHealth.data.totals.endpoints, 1);
    const summary = await mgmt.getOpsSummary();
    assert.deepEqual(
      summary.data.last_hour.surfaces.map((x) => x.surface),
      ["management", "runtime", "system"],
    );
    assert.equal(summary.data.webhooks.pending, 1);
    assert.equal(summary.data.webhooks.failed, 0);
    const runtimeErrors = await mgmt.listOpsRuntimeErrors({ query: { code: "FEATURE_QUOTA_EXCEEDED", from: "2026-01-01T00:00:00Z", to: "2027-01-01T00:00:00Z" } });
    assert.equal(runtimeErrors.data.total_denials, 1);
    assert.equal(runtimeErrors.data.groups.length, 1);
    assert.equal(runtimeErrors.data.groups[0]?.operation, "consumeLicense");
    assert.equal(runtimeErrors.data.groups[0]?.product_id, productId);
    assert.equal(runtimeErrors.data.groups[0]?.sample_request_ids[0], overQuota.requestId);
    assert.ok((await mgmt.listWebhookEndpoints()).data.some((w) => w.id === hook.data.id));
    assert.equal((await mgmt.getWebhookEndpoint({ path: { id: hook.data.id } })).data.name, "ops");
    const updated = (await mgmt.updateWebhookEndpoint({ path: { id: hook.data.id }, body: { is_active: false } })).data;
    assert.equal("webhook" in updated ? updated.webhook.is_active : updated.is_active, false);
    assert.equal(await mgmt.deleteWebhookEndpoint({ path: { id: hook.data.id } }), undefined);
    const events = await mgmt.listEvents({ query: { resource_id: licenseId, limit: 200 } });
    assert.ok(events.data.some((e) => e.event_type === "license.renewed"));

    assert.equal(await admin.revokeAPIKey({ path: { id: apiKeyId } }), undefined);
    const revoked = await rejectsWith(mgmt.listProducts(), ApiError);
    assert.equal(revoked.code, "UNAUTHORIZED");

    // every operation of the table, and nothing else, was called
    assert.deepEqual([...counts.keys()].sort(), Object.keys(OPERATIONS).sort());
  });

  it("passed hooks the operation, attempt, status, code, request id and resource ids — and never a credential", () => {
    assert.ok(requestEvents.length >= Object.keys(OPERATIONS).length);
    for (const e of requestEvents) {
      assert.equal(typeof e.operation, "string");
      assert.ok(e.url.startsWith(baseUrl));
      assert.equal(e.attempt, 1);
    }
    const inactive = errorEvents.find((e) => e.code === "LICENSE_INACTIVE");
    assert.ok(inactive);
    assert.equal(inactive.operation, "validateLicense");
    assert.equal(inactive.status, 403);
    assert.match(inactive.requestId ?? "", REQUEST_ID);
    assert.equal(inactive.willRetry, false);
    const unauthorized = errorEvents.filter((e) => e.code === "UNAUTHORIZED");
    assert.equal(unauthorized.length, 2);
    const dump = JSON.stringify([requestEvents, errorEvents.map(({ error, ...rest }) => ({ ...rest, message: error.message }))]);
    for (const s of secrets) assert.ok(!dump.includes(s), "a credential reached a hook");
  });

  it("names resource ids from path parameters and body ids", async () => {
    const events: ErrorHookEvent[] = [];
    const admin = new ManagementClient({ baseUrl, token: ADMIN_TOKEN, onError: (e) => events.push(e) });
    await rejectsWith(admin.getLicenseDevice({ path: { id: "lic_missing", device_id: "dev_missing" } }), ApiError);
    assert.deepEqual(events[0]?.resourceIds, { license_id: "lic_missing", device_id: "dev_missing" });
    await rejectsWith(admin.createLicense({ body: { product_id: "prod_missing", policy_id: "pol_missing" } }), ApiError);
    assert.deepEqual(events[1]?.resourceIds, { product_id: "prod_missing", policy_id: "pol_missing" });
  });

  it("ApiError carries status, code, message, detail, requestId, timestamp, meta, body and the operation", async () => {
    const admin = new ManagementClient({ baseUrl, token: ADMIN_TOKEN });
    const err = await rejectsWith(admin.getProduct({ path: { id: "prod_nope" } }), ApiError);
    assert.ok(err instanceof Error);
    assert.ok(!(err instanceof TransportError) && !(err instanceof SignatureVerificationError));
    assert.equal(err.name, "ApiError");
    assert.equal(err.status, 404);
    assert.equal(err.code, "NOT_FOUND");
    assert.equal(err.message, "not found");
    assert.equal(typeof err.detail, "string");
    assert.match(err.requestId ?? "", REQUEST_ID);
    assert.equal(err.meta?.request_id, err.requestId);
    assert.equal(err.timestamp, err.meta?.timestamp);
    assert.equal(err.operation, "getProduct");
    assert.deepEqual((err.body as { error: { code: string } }).error.code, "NOT_FOUND");
    assert.equal(err.signature, undefined);

    const reader = await admin.createAPIKey({ body: { name: "reader", scopes: ["product:read"] } });
    const scoped = new ManagementClient({ baseUrl, token: reader.data.token });
    const denied = await rejectsWith(scoped.listCustomers(), ApiError);
    assert.equal(denied.status, 403);
    assert.equal(denied.code, "TOKEN_SCOPE_DENIED");
    assert.equal(denied.detail, "requires admin");

    const invalid = await rejectsWith(admin.createProduct({ body: { name: "x" } as { name: string; code: string } }), ApiError);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.code, "VALIDATION_ERROR");
  });

  it("a body that is not an error envelope becomes UNKNOWN_ERROR", async () => {
    const html = async () => new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway", headers: { "content-type": "text/html", "x-request-id": "req_edge_1" } });
    const sys = new SystemClient({ baseUrl, fetch: html, retry: { retries: 0 } });
    const err = await rejectsWith(sys.health(), ApiError);
    assert.equal(err.status, 502);
    assert.equal(err.code, UNKNOWN_ERROR);
    assert.equal(err.message, "HTTP 502 Bad Gateway");
    assert.equal(err.body, "<html>Bad gateway</html>");
    assert.equal(err.requestId, "req_edge_1");
    assert.equal(err.meta?.request_id, "req_edge_1");

    const notEnvelope = async () => new Response(JSON.stringify({ oops: true }), { status: 400, headers: { "content-type": "application/json" } });
    const err2 = await rejectsWith(new SystemClient({ baseUrl, fetch: notEnvelope }).health(), ApiError);
    assert.equal(err2.code, UNKNOWN_ERROR);
    assert.deepEqual(err2.body, { oops: true });
    assert.equal(err2.requestId, undefined);

    const empty = async () => new Response(null, { status: 500 });
    const err3 = await rejectsWith(new SystemClient({ baseUrl, fetch: empty, retry: { retries: 0 } }).health(), ApiError);
    assert.equal(err3.code, UNKNOWN_ERROR);
    assert.equal(err3.body, undefined);
  });

  it("a download resolves to the exact bytes (Accept */*) and fails with the error envelope; other binary answers are bytes too", async () => {
    const accepts: (string | null)[] = [];
    const capture: typeof fetch = async (input, init) => {
      accepts.push(new Headers(init?.headers).get("accept"));
      return fetch(input, init);
    };
    const admin = new ManagementClient({ baseUrl, token: ADMIN_TOKEN, fetch: capture });
    const missing = await rejectsWith(admin.downloadReportExport({ path: { id: "rptx_missing" } }), ApiError);
    assert.equal(missing.status, 404);
    assert.equal(missing.code, "NOT_FOUND");
    assert.match(missing.requestId ?? "", REQUEST_ID);
    await admin.listProducts();
    assert.deepEqual(accepts, ["*/*", "application/json"]);

    // every byte survives, also those that are not UTF-8 (text decoding would replace them)
    const raw = Uint8Array.from([0x25, 0x50, 0x44, 0x46, 0x2d, 0xff, 0xfe, 0x00, 0x80, 0xc3]);
    const serve = (contentType: string): typeof fetch => async () => new Response(raw.slice(), { status: 200, headers: { "content-type": contentType } });
    const pdf = await new ManagementClient({ baseUrl, token: ADMIN_TOKEN, fetch: serve("application/pdf") }).downloadReportExport({ path: { id: "rptx_x" } });
    assert.deepEqual([...pdf], [...raw]);
    // a download is bytes whatever its content type, JSON and text included
    const asJson = await new ManagementClient({ baseUrl, token: ADMIN_TOKEN, fetch: serve("application/json") }).downloadReportExport({ path: { id: "rptx_x" } });
    assert.deepEqual([...asJson], [...raw]);
    // an operation documented as JSON that answers another binary type resolves to bytes; text stays text
    const octets = (await new SystemClient({ baseUrl, fetch: serve("application/octet-stream") }).health()) as unknown;
    assert.ok(octets instanceof Uint8Array);
    assert.deepEqual([...octets], [...raw]);
    const text = (await new SystemClient({ baseUrl, fetch: async () => new Response("ok\n", { status: 200, headers: { "content-type": "text/plain" } }) }).health()) as unknown;
    assert.equal(text, "ok\n");
  });

  it("readyz's 503 not_ready envelope is returned, not thrown", async () => {
    const notReady = async () =>
      new Response(JSON.stringify({ data: { status: "not_ready", db: "down" }, meta: { request_id: "req_1", timestamp: new Date().toISOString() } }), {
        status: 503,
        headers: { "content-type": "application/json" },
      });
    let calls = 0;
    const sys = new SystemClient({
      baseUrl,
      fetch: async () => {
        calls++;
        return notReady();
      },
    });
    const res = await sys.readyz();
    assert.equal(res.data.status, "not_ready");
    assert.equal(calls, 1);
  });

  it("a network failure is a TransportError (with cause and operation), retried for GETs", async () => {
    // a loopback port nobody listens on
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const deadUrl = `http://127.0.0.1:${port}`;
    const events: ErrorHookEvent[] = [];
    const sys = new SystemClient({ baseUrl: deadUrl, retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 10 }, onError: (e) => events.push(e) });
    const err = await rejectsWith(sys.listPublicKeys(), TransportError);
    assert.equal(err.name, "TransportError");
    assert.equal(err.operation, "listPublicKeys");
    assert.equal(err.timedOut, false);
    assert.equal(err.aborted, false);
    assert.ok(err.cause);
    assert.ok(!(err instanceof ApiError));
    assert.deepEqual(
      events.map((e) => [e.attempt, e.willRetry, e.code]),
      [
        [1, true, "TRANSPORT_ERROR"],
        [2, true, "TRANSPORT_ERROR"],
        [3, false, "TRANSPORT_ERROR"],
      ],
    );
  });

  it("sends the credential only in Authorization, plus user agent, default and per-call headers, idempotency keys and query strings", async () => {
    const seen: { url: string; method: string; headers: Headers; body: string | undefined }[] = [];
    const capture: typeof fetch = async (input, init) => {
      seen.push({ url: String(input), method: init?.method ?? "GET", headers: new Headers(init?.headers), body: init?.body as string | undefined });
      return fetch(input, init);
    };
    const admin = new ManagementClient({ baseUrl: `${baseUrl}/`, token: ADMIN_TOKEN, fetch: capture, headers: { "x-team": "a", "x-trace": "1" } });
    await admin.listLicenses({ query: { limit: 5, status: "active", product_id: undefined }, headers: { "x-trace": "2" } });
    const [list] = seen;
    assert.equal(list?.url, `${baseUrl}/api/v1/licenses?limit=5&status=active`);
    assert.equal(list?.headers.get("authorization"), `Bearer ${ADMIN_TOKEN}`);
    assert.match(list?.headers.get("user-agent") ?? "", /^licensekit-sdk-typescript\//);
    assert.equal(list?.headers.get("x-team"), "a");
    assert.equal(list?.headers.get("x-trace"), "2");
    assert.equal(list?.headers.get("idempotency-key"), null);
    assert.equal(list?.headers.get("content-type"), null);

    const runtime = new RuntimeClient({ baseUrl, licenseKey: "lsk_not_a_real_key", fetch: capture, userAgent: "acme-app/2.0" });
    await rejectsWith(runtime.activateLicense({ body: { fingerprint: "x" } }), ApiError);
    const act = seen[1];
    assert.equal(act?.headers.get("authorization"), "License lsk_not_a_real_key");
    assert.equal(act?.headers.get("user-agent"), "acme-app/2.0");
    assert.match(act?.headers.get("idempotency-key") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(act?.headers.get("content-type"), "application/json");
    assert.equal(act?.body, JSON.stringify({ fingerprint: "x" }));

    const system = new SystemClient({ baseUrl, fetch: capture });
    await system.health();
    assert.equal(seen[2]?.headers.get("authorization"), null);

    // path parameters are encoded
    await rejectsWith(admin.getProduct({ path: { id: "a/b c" } }), ApiError);
    assert.equal(seen[3]?.url, `${baseUrl}/api/v1/products/a%2Fb%20c`);
  });

  it("keeps credentials out of the client object and refuses wrong usage", async () => {
    const admin = new ManagementClient({ baseUrl, token: ADMIN_TOKEN });
    assert.ok(!JSON.stringify(admin).includes(ADMIN_TOKEN));
    assert.ok(!inspect(admin, { depth: 5, showHidden: true }).includes(ADMIN_TOKEN));
    assert.ok(!Object.values(admin).some((v) => typeof v === "string" && v.includes(ADMIN_TOKEN)));
    const runtime = new RuntimeClient({ baseUrl, licenseKey: "lsk_secret_value" });
    assert.ok(!inspect(runtime, { depth: 5, showHidden: true }).includes("lsk_secret_value"));

    assert.throws(() => new ManagementClient({ baseUrl, token: "" }), TypeError);
    assert.throws(() => new RuntimeClient({ baseUrl, licenseKey: "" }), TypeError);
    assert.throws(() => new SystemClient({ baseUrl: "" }), TypeError);
    const untyped = admin.call as unknown as (op: string, args?: unknown) => Promise<unknown>;
    await assert.rejects(untyped.call(admin, "validateLicense", { body: {} }), TypeError);
    await assert.rejects(untyped.call(admin, "noSuchOperation"), TypeError);
    await assert.rejects(untyped.call(admin, "getProduct", {}), /missing path parameter "id"/);
    // each client has exactly its surface's methods
    const has = (c: object, op: string) => typeof (c as Record<string, unknown>)[op] === "function";
    for (const [op, spec] of Object.entries(OPERATIONS)) {
      assert.equal(has(admin, op), spec.surface === "management", op);
      assert.equal(has(runtime, op), spec.surface === "runtime", op);
      assert.equal(has(new SystemClient({ baseUrl }), op), spec.surface === "system", op);
    }
    // the generic call works with an operationId
    const keys = await new SystemClient({ baseUrl }).call("listPublicKeys");
    assert.ok(keys.data.length >= 1);
  });

  it("a hook that throws never breaks a call", async () => {
    const sys = new SystemClient({
      baseUrl,
      onRequest: () => {
        throw new Error("logger down");
      },
      onError: () => {
        throw new Error("logger down");
      },
    });
    assert.equal((await sys.health()).data.status, "ok");
    const admin = new ManagementClient({
      baseUrl,
      token: ADMIN_TOKEN,
      onError: () => {
        throw new Error("logger down");
      },
    });
    const err = await rejectsWith(admin.getProduct({ path: { id: "prod_nope" } }), ApiError);
    assert.equal(err.code, "NOT_FOUND");
  });
});
