// /api/v1: subscriptions.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const subscriptionRoutes: FastifyPluginAsyncTypebox = async (_app) => {};
