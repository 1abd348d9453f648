// /api/v1: product versions (GET/POST /products/{id}/versions).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const versionRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
