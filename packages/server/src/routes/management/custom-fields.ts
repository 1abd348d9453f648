// /api/v1: custom-field definitions and customer/license custom-field values.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const customFieldRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
