// /api/v1: license renew and transfer.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const licenseActionRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
