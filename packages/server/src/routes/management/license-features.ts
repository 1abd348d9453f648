// /api/v1: license feature assignments and usage reset.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const licenseFeatureRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
