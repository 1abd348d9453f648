// Version eligibility (NOTES §9, D2 step 6): which app versions a license may run. Pure.
//
// - Gating is enforced only once the product has a version catalogue (at least one version);
//   until then every app_version is entitled and `enforced` is false.
// - eligible_through = `maintenance_expires_at` for perpetual licenses, `expires_at` otherwise;
//   none (a perpetual license without maintenance end, or a license without expiry) means every
//   catalogued version is eligible.
// - Under enforcement an app_version is entitled when it is in the catalogue and was released on
//   or before eligible_through. An unknown version is not entitled, and neither is a request that
//   leaves app_version out (NOTES §9 calls leaving it out a common mistake): the engine answers
//   VERSION_NOT_ELIGIBLE with a detail that says why.

/** What the catalogue says about one app_version of a product (store/product-versions.ts). */
export interface VersionCatalogFacts {
  /** The product has at least one version. */
  catalogue: boolean;
  /** The catalogue entry for the requested app_version, when there is one. */
  release: { version: string; released_at: number } | null;
}

export interface VersionJudgement {
  enforced: boolean;
  entitled: boolean;
  /** Why the version is not entitled (the VERSION_NOT_ELIGIBLE detail). */
  detail?: string;
  appVersion?: string;
  releasedAt?: number;
  eligibleThrough?: number;
}

/** A judgement that gates nothing: for callers with no catalogue to consult. */
export const NOT_GATED: VersionJudgement = { enforced: false, entitled: true };

export function eligibleThrough(licenseType: string, license: { expires_at: number | null; maintenance_expires_at: number | null }): number | null {
  return licenseType === "perpetual" ? license.maintenance_expires_at : license.expires_at;
}

export interface VersionInput {
  appVersion: string | undefined;
  licenseType: string;
  license: { expires_at: number | null; maintenance_expires_at: number | null };
  facts: VersionCatalogFacts;
}

const isoOf = (ms: number) => new Date(ms).toISOString();

/** A judgement with the facts known for it, built in one go (no spreads: this runs on every validate). */
function judgement(enforced: boolean, entitled: boolean, input: VersionInput, through: number | null, detail?: string): VersionJudgement {
  const j: VersionJudgement = { enforced, entitled };
  if (input.appVersion !== undefined) j.appVersion = input.appVersion;
  if (input.facts.release) j.releasedAt = input.facts.release.released_at;
  if (through !== null) j.eligibleThrough = through;
  if (detail !== undefined) j.detail = detail;
  return j;
}

export function judgeVersion(input: VersionInput): VersionJudgement {
  const { appVersion, facts } = input;
  const through = eligibleThrough(input.licenseType, input.license);
  if (!facts.catalogue) return judgement(false, true, input, through);
  if (appVersion === undefined) {
    return judgement(true, false, input, through, "field app_version: is required; the product has a version catalogue and gates versions");
  }
  if (!facts.release) {
    return judgement(true, false, input, through, `field app_version: version ${appVersion} is not in the product's version catalogue`);
  }
  if (through !== null && facts.release.released_at > through) {
    const what = input.licenseType === "perpetual" ? "maintenance ends" : "the license expires";
    const detail = `field app_version: version ${appVersion} was released ${isoOf(facts.release.released_at)}, after ${what} (${isoOf(through)})`;
    return judgement(true, false, input, through, detail);
  }
  return judgement(true, true, input, through);
}
