// Every management route plugin, registered under /api/v1 behind management auth and idempotency.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { apiKeyRoutes } from "./api-keys.js";
import { bulkRoutes } from "./bulk.js";
import { customFieldRoutes } from "./custom-fields.js";
import { customerRoutes } from "./customers.js";
import { deviceRoutes } from "./devices.js";
import { eventRoutes } from "./events.js";
import { featureRoutes } from "./features.js";
import { licenseActionRoutes } from "./license-actions.js";
import { licenseFeatureRoutes } from "./license-features.js";
import { leaseRoutes } from "./leases.js";
import { licenseLifecycleRoutes, licenseRoutes } from "./licenses.js";
import { orderRoutes } from "./orders.js";
import { policyRoutes } from "./policies.js";
import { productRoutes } from "./products.js";
import { subscriptionRoutes } from "./subscriptions.js";
import { versionRoutes } from "./versions.js";
import { webhookRoutes } from "./webhooks.js";
import { webhookDeliveryRoutes } from "./webhook-deliveries.js";
import { reportingRoutes } from "./reporting.js";
import { exportRoutes } from "./exports.js";
import { opsRoutes } from "./ops.js";

export const MANAGEMENT_ROUTES: FastifyPluginAsyncTypebox[] = [
  productRoutes,
  versionRoutes,
  policyRoutes,
  featureRoutes,
  subscriptionRoutes,
  orderRoutes,
  customFieldRoutes,
  customerRoutes,
  apiKeyRoutes,
  eventRoutes,
  webhookRoutes,
  licenseRoutes,
  licenseLifecycleRoutes,
  licenseActionRoutes,
  deviceRoutes,
  licenseFeatureRoutes,
  bulkRoutes,
  leaseRoutes,
  webhookDeliveryRoutes,
  reportingRoutes,
  exportRoutes,
  opsRoutes,
];
