import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const opsRoutes: FastifyPluginAsyncTypebox = async () => {};
