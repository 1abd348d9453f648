// /api/v1: webhook endpoints.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const webhookRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
