// /api/v1: bulk license actions.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const bulkRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
