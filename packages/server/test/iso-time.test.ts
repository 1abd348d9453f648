// isoTime (clock.ts) writes the timestamps of every runtime answer, which are signed: it must give
// exactly the characters of Date#toISOString, including at day, month, year and leap-day edges,
// and hand everything outside the range it formats itself to toISOString (same text, same errors).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DAY_MS, isoTime } from "../src/clock.js";
import { entitlementData, featureEntitlement } from "../src/domain/entitlement.js";

const same = (ms: number) => assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);

describe("isoTime", () => {
  it("matches toISOString at the edges of days, months, years and leap days", () => {
    const edges = [
      "1970-01-01T00:00:00.000Z",
      "1999-12-31T23:59:59.999Z",
      "2000-02-29T12:34:56.789Z",
      "2024-02-29T23:59:59.999Z",
      "2024-03-01T00:00:00.000Z",
      "2026-12-31T23:59:59.999Z",
      "2100-03-01T00:00:00.001Z",
      "9999-12-31T23:59:59.999Z",
    ];
    for (const iso of edges) {
      const ms = Date.parse(iso);
      for (const d of [-1, 0, 1]) if (ms + d >= 0) same(ms + d);
      assert.equal(isoTime(ms), iso);
    }
  });

  it("matches toISOString over many random times and consecutive milliseconds", () => {
    for (let i = 0; i < 200_000; i++) same(Math.floor(Math.random() * 253_402_300_800_000));
    const start = Date.parse("2026-12-02T23:59:58.000Z");
    for (let ms = start; ms < start + 4000; ms++) same(ms);
    // more distinct days than the prefix cache keeps, so it is cleared and refilled on the way
    for (let day = 0; day < 3000; day++) same(day * 7 * DAY_MS + 45_296_789);
  });

  it("hands times outside 1970–9999 and fractional milliseconds to toISOString", () => {
    for (const ms of [-1, -86_400_000, -62_198_755_200_000, 253_402_300_800_000, 8.64e15, 1.5, 1764700000000.25]) same(ms);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1]) assert.throws(() => isoTime(bad), RangeError);
  });
});

describe("entitlement data", () => {
  const now = Date.parse("2026-12-02T10:00:00.123Z");
  const base = {
    license: { id: "lic_1", entitlement_version: 4, expires_at: null as number | null },
    policy: { license_type: "subscription", validation_interval_minutes: 60 },
    status: "active" as const,
    deviceId: "dev_1",
    now,
    version: { appVersion: undefined, entitled: true, enforced: false },
  };

  it("keeps the contract's key order with and without the optional members", () => {
    const quota = featureEntitlement({ code: "q", enabled: 1, max_consumptions: 10, total_consumptions: 12, expires_at: null }, now);
    const plain = featureEntitlement({ code: "p", enabled: 1, max_consumptions: null, total_consumptions: 3, expires_at: now }, now);
    assert.equal(JSON.stringify(quota), '{"code":"q","enabled":true,"quota":10,"consumed":12,"remaining":0}');
    assert.equal(JSON.stringify(plain), '{"code":"p","enabled":false,"consumed":3}');
    const without = entitlementData({ ...base, features: [] });
    assert.deepEqual(Object.keys(without), ["license_id", "status", "license_type", "entitlement_version", "issued_at", "next_check_at", "device_id", "features"]);
    assert.equal(without.issued_at, "2026-12-02T10:00:00.123Z");
    assert.equal(without.next_check_at, "2026-12-02T11:00:00.123Z");
    const expires = Date.parse("2027-01-01T00:00:00.000Z");
    const withAll = entitlementData({
      ...base,
      license: { ...base.license, expires_at: expires },
      version: { appVersion: "2.0.0", entitled: true, enforced: true, releasedAt: now - DAY_MS },
      features: [quota],
    } as Parameters<typeof entitlementData>[0]);
    assert.deepEqual(Object.keys(withAll), ["license_id", "status", "license_type", "entitlement_version", "issued_at", "next_check_at", "expires_at", "device_id", "features", "version_eligibility"]);
    assert.equal(withAll.expires_at, "2027-01-01T00:00:00.000Z");
    assert.equal(withAll.version_eligibility?.released_at, "2026-12-01T10:00:00.123Z");
  });
});
