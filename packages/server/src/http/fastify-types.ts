// What this project adds to Fastify's request, route config and instance.
import type { CacheEntry } from "../cache/runtime-cache.js";
import type { Services } from "../services.js";
import type { LicenseRow, PolicyRow } from "../store/schema.js";
import type { IdempotencyClaim } from "./idempotency.js";
import type { Scope } from "./scopes.js";

export interface ManagementPrincipal {
  kind: "api_key";
  id: string;
  scopes: string[];
}

export interface RuntimePrincipal {
  kind: "license";
  license: LicenseRow;
  policy: PolicyRow;
  /** The runtime cache's entry the license came from (or, with the cache not live, one made for this request). */
  entry: CacheEntry;
}

declare module "fastify" {
  interface FastifyInstance {
    lk: Services;
  }
  interface FastifyRequest {
    principal: ManagementPrincipal | null;
    runtime: RuntimePrincipal | null;
    idem: IdempotencyClaim | null;
    /** The error code answered, for metrics and logs ("none" on success). */
    errorCode: string | null;
    correlationId: string | null;
    /** Set by the JSON body parser when the body's text has no \u0000 escape, so no string in it holds NUL. */
    bodyNulFree: boolean;
    /** A validate or check answered without a transaction: nothing for its answer to invalidate. */
    runtimeReadOnly: boolean;
  }
  interface FastifyContextConfig {
    /** Least-privilege scope of a management route (x-required-scopes). */
    scope?: Scope;
    /** Idempotency-Key handling: required by the contract, or merely accepted. */
    idempotency?: "required" | "optional";
    /** Runtime routes answered from the runtime cache (validate, check): a miss loads the license with its features and devices. */
    cachedState?: boolean;
  }
}
