// /api/v1: features (products/{id}/features, features/{id}).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const featureRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
