import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";

export const webhookDeliveryRoutes: FastifyPluginAsyncTypebox = async () => {};
