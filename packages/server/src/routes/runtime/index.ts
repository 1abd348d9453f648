// Every runtime route plugin, registered under /api/v1/license behind license-key auth and
// idempotency. One runtime engine (domain/runtime-engine.ts) decides each of them (D2).
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { activateRoute } from "./activate.js";
import { checkRoute } from "./check.js";
import { consumeRoute } from "./consume.js";
import { deactivateRoute } from "./deactivate.js";
import { floatingRoutes } from "./floating.js";
import { offlineRoute } from "./offline.js";
import { validateRoute } from "./validate.js";

export const RUNTIME_ROUTES: FastifyPluginAsyncTypebox[] = [activateRoute, validateRoute, checkRoute, consumeRoute, offlineRoute, deactivateRoute, floatingRoutes];
