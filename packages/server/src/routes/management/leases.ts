// /api/v1/licenses/{id}/leases: list and release floating leases (beyond the contract).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const leaseRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
