// POST /api/v1/license/offline — an encrypted, signed offline envelope for a bound device (D5).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const offlineRoute: FastifyPluginAsyncTypebox = async (_app) => {};
