// /api/v1: license devices.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const deviceRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
