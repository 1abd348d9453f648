import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const reportingRoutes: FastifyPluginAsyncTypebox = async () => {};
