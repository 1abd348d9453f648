// Authentication for the two credential surfaces, which never accept each other's credentials:
// management `Authorization: Bearer lkm_…` and runtime `Authorization: License lsk_…`. Both are looked
// up by keyed hash. `detail` says what is wrong without revealing whether an unknown credential exists.
import type { FastifyReply, FastifyRequest } from "fastify";
import { normalizeLicenseKey } from "../ids.js";
import { ipAllowed } from "./cidr.js";
import { ApiError } from "./errors.js";
import { type Scope, scopeSatisfied } from "./scopes.js";

function authorization(req: FastifyRequest): { scheme: string; credential: string } | null {
  const header = req.headers.authorization;
  if (!header) return null;
  const m = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  if (!m) return { scheme: "", credential: "" };
  return { scheme: m[1]!.toLowerCase(), credential: m[2]! };
}

/** onRequest hook for management routes: authenticates the token, then checks the route's scope. */
export async function managementAuth(req: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const auth = authorization(req);
  if (!auth) throw new ApiError("UNAUTHORIZED", "missing Authorization: Bearer <token> header");
  if (auth.scheme === "license") throw new ApiError("UNAUTHORIZED", "license keys are not accepted on management routes; use a management token");
  if (auth.scheme !== "bearer" || !auth.credential) throw new ApiError("UNAUTHORIZED", "malformed Authorization header; expected Bearer <token>");
  if (!auth.credential.startsWith("lkm_")) throw new ApiError("UNAUTHORIZED", "token is malformed");
  const { store, hasher, clock, sideEffects } = req.server.lk;
  const row = await store.db
    .selectFrom("api_keys")
    .select(["id", "scopes", "allowed_cidrs", "is_active", "expires_at", "revoked_at"])
    .where("token_hash", "=", hasher.hash(auth.credential))
    .executeTakeFirst();
  if (!row) throw new ApiError("UNAUTHORIZED", "token is not valid");
  const now = clock.now();
  if (row.revoked_at !== null) throw new ApiError("UNAUTHORIZED", "token has been revoked");
  if (row.is_active !== 1) throw new ApiError("UNAUTHORIZED", "token is inactive");
  if (row.expires_at !== null && row.expires_at <= now) throw new ApiError("UNAUTHORIZED", "token has expired");
  const cidrs = JSON.parse(row.allowed_cidrs) as string[];
  if (!ipAllowed(req.ip, cidrs)) throw new ApiError("UNAUTHORIZED", `token is not allowed from client address ${req.ip} (see its allowed_cidrs)`);
  const scopes = JSON.parse(row.scopes) as string[];
  req.principal = { kind: "api_key", id: row.id, scopes };
  sideEffects.apiKeyUsed(row.id, now);

  const required: Scope = req.routeOptions.config.scope ?? "admin";
  if (!scopeSatisfied(scopes, required)) throw new ApiError("TOKEN_SCOPE_DENIED", `requires ${required}`);
}

/** onRequest hook for runtime routes: resolves the license (and its policy) from the license key. */
export async function runtimeAuth(req: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const auth = authorization(req);
  if (!auth) throw new ApiError("UNAUTHORIZED", "missing Authorization: License <license-key> header");
  if (auth.scheme === "bearer") throw new ApiError("UNAUTHORIZED", "management tokens are not accepted on runtime routes; use License <license-key>");
  if (auth.scheme !== "license" || !auth.credential) throw new ApiError("UNAUTHORIZED", "malformed Authorization header; expected License <license-key>");
  const key = normalizeLicenseKey(auth.credential);
  if (!key) throw new ApiError("UNAUTHORIZED", "license key is malformed");
  const { store, hasher, runtimeCache } = req.server.lk;
  // From the runtime cache when it is live (no database read), else license and policy are read.
  const found = await runtimeCache.license(store.db, hasher.hash(key), { withState: req.routeOptions.config.cachedState === true });
  if (!found) throw new ApiError("UNAUTHORIZED", "license key is not valid");
  req.runtime = { kind: "license", license: found.license, policy: found.policy, entry: found };
}
