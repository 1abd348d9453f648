// The license guard against a real server (SQLite) behind a switchable loopback TCP proxy, with a
// simulated clock shared by the server and the guard's timers. It activates once, validates at
// next_check_at (+ jitter), keeps the application running through a 5-minute outage inside the grace
// window, reports `denied` with LICENSE_INACTIVE once the license is suspended and the server is
// reachable again, reports `tampered` for altered answers or storage, and never becomes `denied`
// on a network error.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import type { ManualClock } from "../../server/src/clock.js";
import { ADMIN_TOKEN, type Harness, issueLicense, listen, startHarness } from "../../server/test/helpers/harness.js";
import { createLicenseGuard, type GuardClock, type GuardSnapshot, type GuardState, type LicenseGuard, type LicenseGuardOptions } from "../src/guard.js";
import { memoryStorage } from "../src/storage.js";
import type { PublicKeyRecord } from "../src/verify.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Timers on the server's ManualClock: advancing fires due timers in order, waiting for the guard after each. */
class TestClock implements GuardClock {
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  constructor(readonly server: ManualClock) {}
  now(): number {
    return this.server.now();
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.now() + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  async advanceTo(target: number, guards: LicenseGuard[]): Promise<void> {
    for (let fired = 0; ; fired++) {
      assert.ok(fired < 10_000, "runaway timers");
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      if (next[1].at > this.now()) this.server.set(next[1].at);
      next[1].fn();
      for (const g of guards) await g.whenIdle();
    }
    if (target > this.now()) this.server.set(target);
  }
  advance(ms: number, guards: LicenseGuard[]): Promise<void> {
    return this.advanceTo(this.now() + ms, guards);
  }
}

/** A loopback TCP proxy that can be switched off (connections refused by being dropped at once). */
async function switchableProxy(targetUrl: string): Promise<{ url: string; setUp(up: boolean): void; connections(): number; close(): Promise<void> }> {
  const target = new URL(targetUrl);
  const MAX_CONNECTIONS = 2000;
  const sockets = new Set<net.Socket>();
  let up = true;
  let count = 0;
  const server = net.createServer((client) => {
    count++;
    if (!up || count > MAX_CONNECTIONS) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    setUp(v) {
      up = v;
      if (!v) for (const s of sockets) s.destroy();
    },
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

type Tamper = (path: string, status: number, text: string) => { status?: number; text: string; contentType?: string } | undefined;

/** fetch that records paths and can rewrite answers (a man in the middle). */
function instrumentedFetch() {
  const calls: string[] = [];
  const state: { tamper: Tamper | undefined } = { tamper: undefined };
  const f: typeof fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const path = new URL(url).pathname;
    calls.push(path);
    const res = await fetch(input, init);
    const text = await res.text();
    const out = state.tamper?.(path, res.status, text);
    const headers = new Headers();
    for (const h of ["content-type", "retry-after", "x-request-id"]) {
      const v = res.headers.get(h);
      if (v !== null) headers.set(h, v);
    }
    if (out?.contentType) headers.set("content-type", out.contentType);
    return new Response(out ? out.text : text, { status: out?.status ?? res.status, headers });
  };
  return {
    fetch: f,
    calls,
    state,
    count: (suffix: string) => calls.filter((c) => c.endsWith(suffix)).length,
  };
}

describe("license guard", () => {
  let h: Harness;
  let serverUrl: string;
  let proxy: Awaited<ReturnType<typeof switchableProxy>>;
  let keys: PublicKeyRecord[];
  let clock: TestClock;
  const guards: LicenseGuard[] = [];

  before(async () => {
    h = await startHarness("sqlite");
    serverUrl = await listen(h);
    proxy = await switchableProxy(serverUrl);
    keys = ((await (await fetch(`${serverUrl}/api/v1/system/public-keys`)).json()) as { data: PublicKeyRecord[] }).data;
  });
  after(async () => {
    for (const g of guards) g.stop();
    await proxy?.close();
    await h?.close();
    assert.ok(proxy.connections() < 2000, "the proxy stayed within its bound");
  });
  beforeEach(() => {
    for (const g of guards.splice(0)) g.stop();
    proxy.setUp(true);
    clock = new TestClock(h.clock);
  });

  function makeGuard(o: Partial<LicenseGuardOptions> & Pick<LicenseGuardOptions, "licenseKey" | "fingerprint">, record?: GuardState[]): LicenseGuard {
    const g = createLicenseGuard({
      baseUrl: proxy.url,
      storage: memoryStorage(),
      clock,
      retry: { retries: 0 },
      random: () => 0.5,
      onStateChange: record ? (s: GuardSnapshot) => record.push(s.state) : undefined,
      ...o,
    });
    guards.push(g);
    return g;
  }

  const suspend = async (id: string) => assert.equal((await h.request({ url: `/api/v1/licenses/${id}/suspend`, body: {}, token: ADMIN_TOKEN })).status, 200);
  const reinstate = async (id: string) => assert.equal((await h.request({ url: `/api/v1/licenses/${id}/reinstate`, body: {}, token: ADMIN_TOKEN })).status, 200);
  const nextCheck = (g: LicenseGuard) => {
    const at = g.snapshot().nextCheckAt;
    assert.ok(at !== undefined, "a check is scheduled");
    return at;
  };

  it("activates once (persisted), then validates at next_check_at plus jitter", async () => {
    const { key, licenseId } = await issueLicense(h, { max_activations: 2 });
    const storage = memoryStorage();
    const net1 = instrumentedFetch();
    const guard = makeGuard({ licenseKey: key, fingerprint: "guard-host-1", storage, fetch: net1.fetch, binding: { hostname: "host-1", app_version: "1.0.0" } });
    assert.equal(guard.state, "pending");
    assert.equal(guard.isLicensed, false);
    const s = await guard.check();
    assert.equal(s.state, "valid");
    assert.equal(s.source, "online");
    assert.equal(guard.isLicensed, true);
    assert.equal(s.entitlement?.license_id, licenseId);
    assert.deepEqual(net1.calls, ["/api/v1/license/activate", "/api/v1/system/public-keys"]);
    const stored = storage.data.get("licensekit.guard")!;
    assert.ok(JSON.parse(stored).activated, "activation persisted");
    assert.ok(!stored.includes(key) && !stored.includes(key.slice(4)), "the license key is never stored");

    guard.start();
    const due = Date.parse(s.entitlement!.next_check_at);
    assert.equal(due - clock.now(), DAY, "the policy's default 24 h interval");
    // Jitter: random 0.5 × min(10% of the wait, 5 min) = 2.5 min after next_check_at.
    assert.equal(nextCheck(guard), due + 150_000);
    await clock.advanceTo(due + 149_999, [guard]);
    assert.equal(net1.count("/validate"), 0, "not before the jittered time");
    await clock.advanceTo(due + 150_000, [guard]);
    assert.equal(net1.count("/validate"), 1);
    assert.equal(guard.state, "valid");
    assert.equal(guard.entitlement?.issued_at, new Date(due + 150_000).toISOString());
    // The next one is scheduled from the new entitlement.
    assert.equal(nextCheck(guard), Date.parse(guard.entitlement!.next_check_at) + 150_000);
    await clock.advance(DAY + 150_000, [guard]);
    assert.equal(net1.count("/validate"), 2);

    // A restart with the same storage validates; it does not activate again.
    guard.stop();
    const net2 = instrumentedFetch();
    const again = makeGuard({ licenseKey: key, fingerprint: "guard-host-1", storage, fetch: net2.fetch, binding: { hostname: "host-1", app_version: "1.0.0" } });
    assert.equal((await again.check()).state, "valid");
    assert.equal(net2.count("/activate"), 0);
    assert.equal(net2.count("/validate"), 1);
    assert.equal(net1.count("/activate"), 1);
    const devices = await h.request({ url: `/api/v1/licenses/${licenseId}/devices` });
    assert.equal(devices.json.data.length, 1, "one machine bound");
    // Another license key on the same storage starts over (state is keyed by a hash of the key).
    const other = await issueLicense(h);
    const net3 = instrumentedFetch();
    const third = makeGuard({ licenseKey: other.key, fingerprint: "guard-host-1", storage, fetch: net3.fetch });
    assert.equal((await third.check()).state, "valid");
    assert.equal(net3.count("/activate"), 1);
  });

  it("an activation whose answer was lost is retried with the same Idempotency-Key (applied once), even after a restart", async () => {
    const { key, licenseId } = await issueLicense(h, { max_activations: 1 });
    const storage = memoryStorage();
    const keysSent: string[] = [];
    let dropAnswers = 1;
    const lossy: typeof fetch = async (input, init) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const res = await fetch(input, init);
      if (url.endsWith("/activate")) {
        keysSent.push(new Headers(init?.headers).get("idempotency-key") ?? "");
        if (dropAnswers-- > 0) throw new TypeError("fetch failed: the answer was lost");
      }
      return res;
    };
    const first = makeGuard({ licenseKey: key, fingerprint: "guard-host-7", storage, fetch: lossy });
    let s = await first.check();
    assert.equal(s.state, "unavailable", "nothing verified yet: not licensed, not denied");
    assert.equal(s.code, "TRANSPORT_ERROR");
    // The process restarts; the persisted key is reused and the server replays its first answer.
    const second = makeGuard({ licenseKey: key, fingerprint: "guard-host-7", storage, fetch: lossy });
    s = await second.check();
    assert.equal(s.state, "valid");
    assert.equal(keysSent.length, 2);
    assert.equal(keysSent[0], keysSent[1]);
    assert.match(keysSent[0]!, /^[0-9a-f-]{36}$/);
    const events = await h.request({ url: `/api/v1/events?event_type=license.activated&resource_id=${licenseId}` });
    assert.equal(events.status, 200, events.text);
    assert.equal(events.json.data.length, 1, "applied once");
    assert.equal((await h.request({ url: `/api/v1/licenses/${licenseId}/devices` })).json.data.length, 1);
  });

  it("keeps the application running through a 5-minute outage inside the grace window", async () => {
    const { key } = await issueLicense(h, { max_activations: 2 });
    const seen: GuardState[] = [];
    const n = instrumentedFetch();
    const guard = makeGuard({ licenseKey: key, fingerprint: "guard-host-2", fetch: n.fetch }, seen);
    assert.equal((await guard.check()).state, "valid");
    guard.start();
    const lastVerified = guard.entitlement!;

    proxy.setUp(false); // the server goes away
    await clock.advanceTo(nextCheck(guard), [guard]);
    const outageStart = clock.now();
    let s = guard.snapshot();
    assert.equal(s.state, "grace");
    assert.equal(s.code, "TRANSPORT_ERROR");
    assert.equal(s.source, "cache");
    assert.deepEqual(s.entitlement, lastVerified);
    assert.equal(s.graceUntil, Date.parse(lastVerified.next_check_at) + 7 * DAY);
    // Five minutes, second by ten seconds: the application may run all along.
    while (clock.now() < outageStart + 5 * MINUTE) {
      await clock.advance(10_000, [guard]);
      assert.equal(guard.isLicensed, true, `licensed at +${(clock.now() - outageStart) / 1000}s`);
      assert.equal(guard.state, "grace");
    }
    const attempts = n.count("/validate");
    assert.ok(attempts >= 3, `retried during the outage (${attempts} attempts)`);

    proxy.setUp(true); // back
    await clock.advanceTo(nextCheck(guard), [guard]);
    s = guard.snapshot();
    assert.equal(s.state, "valid");
    assert.equal(s.source, "online");
    assert.ok(Date.parse(s.entitlement!.issued_at) > outageStart);
    assert.deepEqual(seen, ["valid", "grace", "valid"], "never denied, unavailable or tampered");
  });

  it("reports denied with LICENSE_INACTIVE after a suspension once the server is reachable again; an outage then does not revive the cache", async () => {
    const { key, licenseId } = await issueLicense(h, { max_activations: 2 });
    const seen: GuardState[] = [];
    const guard = makeGuard({ licenseKey: key, fingerprint: "guard-host-3" }, seen);
    assert.equal((await guard.check()).state, "valid");
    guard.start();

    proxy.setUp(false);
    await suspend(licenseId); // the vendor suspends during the outage
    await clock.advanceTo(nextCheck(guard), [guard]);
    assert.equal(guard.state, "grace", "unreachable: not a denial");
    await clock.advance(5 * MINUTE, [guard]);
    assert.equal(guard.state, "grace");

    proxy.setUp(true);
    await clock.advanceTo(nextCheck(guard), [guard]);
    let s = guard.snapshot();
    assert.equal(s.state, "denied");
    assert.equal(s.code, "LICENSE_INACTIVE");
    assert.match(s.requestId ?? "", /^req_/);
    assert.equal(guard.isLicensed, false);

    // Cutting the network now keeps the verified denial: no fallback to the old entitlement.
    proxy.setUp(false);
    await clock.advance(2 * HOUR, [guard]);
    s = guard.snapshot();
    assert.equal(s.state, "denied");
    assert.equal(s.code, "LICENSE_INACTIVE");
    // Reinstated and reachable: valid again at the next re-check.
    proxy.setUp(true);
    await reinstate(licenseId);
    await clock.advanceTo(nextCheck(guard), [guard]);
    assert.equal(guard.state, "valid");
    assert.deepEqual(
      seen.filter((v, i) => seen[i - 1] !== v),
      ["valid", "grace", "denied", "valid"],
    );
  });

  it("reports tampered for an altered answer (data, signature, kid, signed denial, forged denial); never denied, never valid", async () => {
    const { key, licenseId } = await issueLicense(h, { max_activations: 2 });
    const n = instrumentedFetch();
    const seen: GuardState[] = [];
    const guard = makeGuard({ licenseKey: key, fingerprint: "guard-host-4", fetch: n.fetch }, seen);
    assert.equal((await guard.check()).state, "valid");
    const onValidate = (fn: (text: string, status: number) => { status?: number; text: string; contentType?: string }) => {
      n.state.tamper = (path, status, text) => {
        if (!path.endsWith("/validate")) return undefined;
        const out = fn(text, status);
        assert.notEqual(out.text, text, "the answer was altered");
        return out;
      };
    };
    const expectTampered = async (reason: string) => {
      const s = await guard.check();
      assert.equal(s.state, "tampered", JSON.stringify({ state: s.state, code: s.code, detail: s.detail }));
      assert.equal(s.code, "SIGNATURE_VERIFICATION_FAILED");
      assert.equal(s.detail, reason);
      assert.equal(guard.isLicensed, false);
    };

    // One character of data.
    onValidate((t) => ({ text: t.replace('"license_id":"lic_', '"license_id":"lid_') }));
    await expectTampered("bad_signature");
    // One character of signature.value.
    onValidate((t) => ({ text: t.replace(/("value":")(.)/, (_m, a: string, c: string) => a + (c === "A" ? "B" : "A")) }));
    await expectTampered("bad_signature");
    // One character of kid: the key set is asked (rate-limited), nothing trusted.
    onValidate((t) => ({ text: t.replace('"kid":"k_', '"kid":"k-') }));
    await expectTampered("unknown_kid");
    // Back to genuine answers: valid. Keep one to replay later.
    let genuine = "";
    n.state.tamper = (path, _status, text) => {
      if (path.endsWith("/validate")) genuine = text;
      return undefined;
    };
    assert.equal((await guard.check()).state, "valid");
    assert.ok(genuine.includes('"signature"'));
    await clock.advance(HOUR, [guard]);
    n.state.tamper = undefined;
    assert.equal((await guard.check()).state, "valid");
    // A genuine but older answer replayed (it verifies): not valid.
    onValidate(() => ({ text: genuine }));
    await expectTampered("replayed_answer");
    // Replayed a day later to a guard that has no newer answer: stale.
    await clock.advance(DAY + HOUR, [guard]);
    const fresh = makeGuard({ licenseKey: key, fingerprint: "guard-host-4", fetch: n.fetch, storage: memoryStorage() });
    n.state.tamper = undefined;
    assert.equal((await fresh.check()).state, "valid"); // activation (already bound)
    onValidate(() => ({ text: genuine }));
    const stale = await fresh.check();
    assert.equal(stale.state, "tampered");
    assert.equal(stale.detail, "stale_answer");
    n.state.tamper = undefined;
    assert.equal((await guard.check()).state, "valid");

    // A genuine, signed denial whose code was changed is not a denial (nor the denial it now names).
    await suspend(licenseId);
    onValidate((t, status) => ({ status, text: t.replace('"code":"LICENSE_INACTIVE"', '"code":"LICENSE_EXPIRED"') }));
    await expectTampered("bad_signature");
    // A denial forged by a proxy, without a signature, is not one either.
    onValidate(() => ({ status: 403, text: '{"error":{"code":"LICENSE_INACTIVE","message":"license is not active"},"meta":{"request_id":"req_fake"}}' }));
    await expectTampered("missing_signature");
    // A proxy's 403 HTML page: not a signed answer.
    onValidate(() => ({ status: 403, text: "<html>Forbidden</html>", contentType: "text/html" }));
    await expectTampered("malformed_payload");
    // A proxy's 503 page is an outage (the cache carries on), not a denial.
    onValidate(() => ({ status: 503, text: "<html>Service Unavailable</html>", contentType: "text/html" }));
    let s = await guard.check();
    assert.equal(s.state, "grace");
    assert.equal(s.code, "HTTP_503");
    // The genuine answer: denied.
    n.state.tamper = undefined;
    s = await guard.check();
    assert.equal(s.state, "denied");
    assert.equal(s.code, "LICENSE_INACTIVE");
    assert.ok(!seen.slice(0, seen.lastIndexOf("denied")).includes("denied"), "denied only for the verified answer");
  });

  it("never becomes denied on network errors: past the grace window it is unavailable, and valid again once reachable", async () => {
    const { key } = await issueLicense(h, { max_activations: 2 });
    const seen: GuardState[] = [];
    const guard = makeGuard({ licenseKey: key, fingerprint: "guard-host-5", offlineGraceMs: HOUR }, seen);
    assert.equal((await guard.check()).state, "valid");
    const due = Date.parse(guard.entitlement!.next_check_at);
    guard.start();
    proxy.setUp(false);
    await clock.advanceTo(due + 30 * MINUTE, [guard]);
    assert.equal(guard.state, "grace");
    assert.equal(guard.snapshot().graceUntil, due + HOUR);
    // The re-check lands on the end of the window, so the state changes on time.
    await clock.advanceTo(due + HOUR, [guard]);
    assert.equal(guard.state, "unavailable");
    assert.equal(guard.code, "GRACE_EXPIRED");
    await clock.advance(3 * DAY, [guard]);
    assert.equal(guard.state, "unavailable");
    assert.ok(!seen.includes("denied") && !seen.includes("tampered"));
    proxy.setUp(true);
    await clock.advanceTo(nextCheck(guard), [guard]);
    assert.equal(guard.state, "valid");

    // Never validated and unreachable: unavailable with the transport code, not denied.
    const fresh = makeGuard({ licenseKey: key, fingerprint: "guard-host-5b" });
    proxy.setUp(false);
    const s = await fresh.check();
    assert.equal(s.state, "unavailable");
    assert.equal(s.code, "TRANSPORT_ERROR");
  });

  it("falls back to a stored offline envelope past the cache window; survives a restart with pinned keys; refuses a clock set back and altered storage", async () => {
    const { key } = await issueLicense(h, { max_activations: 2, allow_offline_activation: true, offline_grace_days: 7 });
    const storage = memoryStorage();
    const n = instrumentedFetch();
    const guard = makeGuard({ licenseKey: key, fingerprint: "guard-host-6", storage, fetch: n.fetch, offlineEnvelope: true, offlineGraceMs: HOUR });
    assert.equal((await guard.check()).state, "valid");
    const issued = clock.now();
    assert.equal(n.count("/offline"), 1);
    assert.ok(JSON.parse(storage.data.get("licensekit.guard")!).offline.ciphertext, "envelope stored");
    const due = Date.parse(guard.entitlement!.next_check_at);
    guard.start();
    proxy.setUp(false);
    await clock.advanceTo(due + 30 * MINUTE, [guard]);
    assert.equal(guard.snapshot().source, "cache");
    await clock.advanceTo(due + 2 * HOUR, [guard]);
    let s = guard.snapshot();
    assert.equal(s.state, "grace");
    assert.equal(s.source, "offline");
    assert.equal(s.graceUntil, issued + 7 * DAY);
    assert.equal(s.entitlement?.license_id, guard.entitlement?.license_id);
    guard.stop();

    // A restart during the outage, with pinned keys (no fetch possible): the stored state still serves.
    const restarted = makeGuard({ licenseKey: key, fingerprint: "guard-host-6", storage, keys, offlineGraceMs: HOUR });
    s = await restarted.check();
    assert.equal(s.state, "grace");
    assert.equal(s.source, "offline");
    // Past the envelope's own window: unavailable.
    clock.server.set(issued + 7 * DAY);
    s = await restarted.check();
    assert.equal(s.state, "unavailable");
    assert.equal(s.code, "GRACE_EXPIRED");
    // The clock wound back (to inside the window): refused, not trusted.
    clock.server.set(issued + 3 * DAY);
    s = await restarted.check();
    assert.equal(s.state, "unavailable");
    assert.equal(s.code, "CLOCK_ROLLBACK");

    // Altered storage: a cached entitlement stretched by hand fails its signature.
    const altered = JSON.parse(storage.data.get("licensekit.guard")!);
    assert.ok(altered.entitlement);
    altered.entitlement.data.next_check_at = "2099-01-01T00:00:00.000Z";
    delete altered.offline;
    delete altered.lastSeenAt;
    const forged = memoryStorage({ "licensekit.guard": JSON.stringify(altered) });
    const victim = makeGuard({ licenseKey: key, fingerprint: "guard-host-6", storage: forged, keys });
    s = await victim.check();
    assert.equal(s.state, "tampered");
    assert.equal(s.detail, "bad_signature");
    assert.equal(victim.isLicensed, false);
    clock.server.set(Math.max(clock.now(), issued + 7 * DAY));
  });
});
