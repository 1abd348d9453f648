// POST /api/v1/license/floating/{checkout,heartbeat,checkin} — floating leases.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const floatingRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
