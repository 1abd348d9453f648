// Quickstart against a local LicenseKit server: an operator sets up a product, a policy and a
// license with the management client; the program activates and validates with the runtime client
// and trusts the answer only after verifying its signature.
//   LICENSEKIT_BASE_URL=http://127.0.0.1:8080 LICENSEKIT_MANAGEMENT_TOKEN=lkm_… npx tsx packages/sdk/examples/quickstart.ts
import { ApiError, ManagementClient, PublicKeyStore, RuntimeClient, SystemClient, verifyRuntimeResult } from "../src/index.js";

const baseUrl = process.env.LICENSEKIT_BASE_URL ?? "http://127.0.0.1:8080";
const token = process.env.LICENSEKIT_MANAGEMENT_TOKEN;
if (!token) throw new Error("set LICENSEKIT_MANAGEMENT_TOKEN to the admin token the server printed at first start");

const management = new ManagementClient({
  baseUrl,
  token,
  onError: (e) => console.error(`[licensekit] ${e.operation} failed: ${e.status ?? "-"} ${e.code ?? ""} request ${e.requestId ?? "-"}`),
});
const suffix = Date.now().toString(36);
const product = await management.createProduct({ body: { name: "Quickstart App", code: `quickstart-${suffix}` } });
const policy = await management.createPolicy({
  path: { id: product.data.id },
  body: { name: "Standard", code: "standard", license_type: "subscription", max_activations: 2 },
});
const created = await management.createLicense({ body: { product_id: product.data.id, policy_id: policy.data.id } });
console.log("license", created.data.license.id, "key", `${created.data.license_key.slice(0, 8)}…`);

const runtime = new RuntimeClient({ baseUrl, licenseKey: created.data.license_key });
const keys = new PublicKeyStore((await new SystemClient({ baseUrl }).listPublicKeys()).data);

// Idempotency-Key generated and reused on retries: the machine is bound once.
await runtime.activateLicense({ body: { fingerprint: "quickstart-machine", hostname: "quickstart" } });
const verified = await verifyRuntimeResult(await runtime.validateLicense({ body: { fingerprint: "quickstart-machine" } }), keys);
console.log("validated:", verified.data.status, "next check at", verified.data.next_check_at);

// A denial is an ApiError with a stable code, a detail and the request id to quote.
try {
  await runtime.checkLicense({ body: { fingerprint: "some-other-machine" } });
} catch (err) {
  if (!(err instanceof ApiError)) throw err;
  console.log("denied as expected:", err.code, "-", err.detail, "- request", err.meta?.request_id);
}
