// What every answer adds to the operations view and to the per-surface Prometheus metrics; called
// once per request from the app's onResponse hook. Cheap: a few counter increments and one Map
// increment (RequestStats).
import type { FastifyRequest } from "fastify";
import type { Services } from "../services.js";
import { REPLAY_CODE, type Surface } from "./request-stats.js";

const RUNTIME_PREFIX = "/api/v1/license/";
const SYSTEM_API_PREFIXES = ["/api/v1/system/", "/api/v1/openapi.json"];

/** runtime: /api/v1/license/…; management: every other /api/v1 route (and unknown /api/v1 paths); system: the rest. */
export function surfaceOf(req: FastifyRequest): Surface {
  const url = req.url;
  if (url.startsWith(RUNTIME_PREFIX)) return "runtime";
  if (req.routeOptions.config?.scope) return "management";
  if (url.startsWith("/api/v1/") && !SYSTEM_API_PREFIXES.some((p) => url.startsWith(p))) return "management";
  return "system";
}

/** The route's operationId; the route template when it has none; "unmatched" for unknown paths. */
export function operationOf(req: FastifyRequest): string {
  const schema = req.routeOptions.schema as { operationId?: string } | undefined;
  return schema?.operationId ?? req.routeOptions.url ?? "unmatched";
}

export function observeRequest(lk: Services, req: FastifyRequest, status: number, elapsedSeconds: number): void {
  const { metrics } = lk;
  const surface = surfaceOf(req);
  const operation = operationOf(req);
  const errorCode = req.errorCode;
  metrics.requestDuration.observe({ surface }, elapsedSeconds);
  if (surface === "runtime") metrics.runtimeRequests.inc({ operation, code: errorCode ?? "none" });
  else if (surface === "management") metrics.managementRequests.inc({ operation, code: errorCode ?? "none" });
  if (errorCode === "TOKEN_SCOPE_DENIED") metrics.scopeDenials.inc({ scope: req.routeOptions.config?.scope ?? "admin" });
  else if (errorCode === "IDEMPOTENCY_CONFLICT" || errorCode === "IDEMPOTENCY_IN_PROGRESS") metrics.idempotencyConflicts.inc({ code: errorCode });
  else if (errorCode === REPLAY_CODE) metrics.idempotencyReplays.inc();
  lk.requestStats.record(surface, operation, status, errorCode ?? "", elapsedSeconds * 1000);
}
