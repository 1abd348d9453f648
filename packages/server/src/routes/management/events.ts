// /api/v1: the audit feed.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const eventRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
