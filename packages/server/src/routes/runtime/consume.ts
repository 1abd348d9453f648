// POST /api/v1/license/consume — metered usage of a feature (Idempotency-Key required; event_id deduplicates).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const consumeRoute: FastifyPluginAsyncTypebox = async (_app) => {};
