// What every answer adds to the operations view and to the per-surface Prometheus metrics; called
// once per request from the app's onResponse hook. Cheap: one Map lookup for the metric children,
// a few increments, and one Map increment (RequestStats).
import type { FastifyRequest } from "fastify";
import type { Services } from "../services.js";
import type { CountCell, HistogramChild } from "./local-metrics.js";
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

/**
 * The counts and histograms one kind of answer moves (method, route, status, code), and its surface
 * and operation, worked out once per kind instead of per request: a request adds to numbers it
 * already holds, and the labelled work waits for a scrape (observability/local-metrics.ts).
 * Bounded: routes are templates ("unmatched" for unknown paths) and codes a fixed catalogue.
 */
interface AnswerMetrics {
  requests: CountCell;
  duration: HistogramChild;
  surfaceDuration: HistogramChild;
  /** licensekit_runtime_requests_total or licensekit_management_requests_total; null for system routes. */
  surfaceRequests: CountCell | null;
  surface: Surface;
  operation: string;
}

function answerMetrics(lk: Services, req: FastifyRequest, route: string, status: number, code: string): AnswerMetrics {
  const key = `${req.method} ${route} ${status} ${code}`;
  const cache = lk.metrics.answers;
  let m = cache.get(key) as AnswerMetrics | undefined;
  if (m === undefined) {
    const { metrics } = lk;
    const surface = surfaceOf(req);
    const operation = operationOf(req);
    const counter = surface === "runtime" ? metrics.runtimeRequests : surface === "management" ? metrics.managementRequests : null;
    m = {
      requests: metrics.requests.cell({ method: req.method, route, status: String(status), code }),
      duration: metrics.duration.labels({ method: req.method, route }),
      surfaceDuration: metrics.requestDuration.labels({ surface }),
      surfaceRequests: counter ? counter.cell({ operation, code }) : null,
      surface,
      operation,
    };
    cache.set(key, m);
  }
  return m;
}

/** Called once per answer from the app's onResponse hook: the HTTP, surface and operations-view counts. */
export function observeRequest(lk: Services, req: FastifyRequest, status: number, elapsedSeconds: number): void {
  const route = req.routeOptions.url ?? "unmatched";
  const errorCode = req.errorCode;
  const m = answerMetrics(lk, req, route, status, errorCode ?? "none");
  m.requests.n += 1;
  m.duration.observe(elapsedSeconds);
  m.surfaceDuration.observe(elapsedSeconds);
  if (m.surfaceRequests) m.surfaceRequests.n += 1;
  if (errorCode === "TOKEN_SCOPE_DENIED") lk.metrics.scopeDenials.inc({ scope: req.routeOptions.config?.scope ?? "admin" });
  else if (errorCode === "IDEMPOTENCY_CONFLICT" || errorCode === "IDEMPOTENCY_IN_PROGRESS") lk.metrics.idempotencyConflicts.inc({ code: errorCode });
  else if (errorCode === REPLAY_CODE) lk.metrics.idempotencyReplays.inc();
  lk.requestStats.record(m.surface, m.operation, status, errorCode ?? "", elapsedSeconds * 1000);
}
