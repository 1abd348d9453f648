// System endpoints (no auth): liveness, readiness, metrics, public signing keys.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { listPublicKeys } from "../crypto/signing-keys.js";
import { responseMeta } from "../http/envelope.js";
import { dataEnvelope, ResponseMeta } from "../http/schemas.js";

const HealthData = Type.Object({ status: Type.Literal("ok") });
const ReadyData = Type.Object({ status: Type.Union([Type.Literal("ready"), Type.Literal("not_ready")]), db: Type.String() });
const PublicKey = Type.Object({
  kid: Type.String(),
  algorithm: Type.String(),
  public_key: Type.String({ description: "Base64-encoded raw Ed25519 public key bytes." }),
  status: Type.Union([Type.Literal("active"), Type.Literal("retired")]),
  created_at: Type.String({ format: "date-time" }),
});

const READY_TIMEOUT_MS = 2000;

export const systemRoutes: FastifyPluginAsync = async (app) => {
  const health = { schema: { tags: ["system"], response: { 200: dataEnvelope(HealthData) } } };
  app.get("/health", { ...health, schema: { ...health.schema, operationId: "health" } }, async (req) => ({ data: { status: "ok" as const }, meta: responseMeta(req) }));
  app.get("/healthz", { ...health, schema: { ...health.schema, operationId: "healthz" } }, async (req) => ({ data: { status: "ok" as const }, meta: responseMeta(req) }));

  app.get(
    "/readyz",
    { schema: { operationId: "readyz", tags: ["system"], response: { 200: dataEnvelope(ReadyData), 503: dataEnvelope(ReadyData) } } },
    async (req, reply) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          app.lk.store.ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("timeout")), READY_TIMEOUT_MS);
          }),
        ]);
        return { data: { status: "ready" as const, db: "ok" }, meta: responseMeta(req) };
      } catch (err) {
        req.log.warn({ err }, "readiness check failed");
        reply.code(503).header("retry-after", "5");
        return { data: { status: "not_ready" as const, db: "unreachable" }, meta: responseMeta(req) };
      } finally {
        clearTimeout(timer);
      }
    },
  );

  app.get("/metrics", { schema: { operationId: "getMetrics", tags: ["system"], response: { 200: Type.String() } } }, async (_req, reply) => {
    const body = await app.lk.metrics.registry.metrics();
    return reply.type(app.lk.metrics.registry.contentType).send(body);
  });

  app.get(
    "/api/v1/system/public-keys",
    { schema: { operationId: "listPublicKeys", tags: ["system"], response: { 200: Type.Object({ data: Type.Array(PublicKey), meta: ResponseMeta }) } } },
    async (req) => ({ data: await listPublicKeys(app.lk.store.db), meta: responseMeta(req) }),
  );
};
