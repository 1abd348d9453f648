// POST /api/v1/license/deactivate — releases a binding (Idempotency-Key required; D12 limits).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const deactivateRoute: FastifyPluginAsyncTypebox = async (_app) => {};
