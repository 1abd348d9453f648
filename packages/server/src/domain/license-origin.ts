// A license's origin linkage (NOTES §11): the order and/or subscription it was issued (or renewed)
// for. Both must belong to the license's product; given together they must agree (an order that
// links a subscription links that one); an order that links a subscription implies it.
import { ApiError } from "../http/errors.js";
import type { Q } from "../store/db.js";
import { findOrder } from "../store/orders.js";
import { findSubscription } from "../store/subscriptions.js";

export interface OriginRequest {
  productId: string;
  orderId?: string | null;
  subscriptionId?: string | null;
}

export interface Origin {
  order_id: string | null;
  subscription_id: string | null;
}

export interface OriginOrder {
  id: string;
  product_id: string;
  subscription_id: string | null;
}

export interface OriginSubscription {
  id: string;
  product_id: string;
}

const given = (v: string | null | undefined): v is string => v !== undefined && v !== null;

/**
 * The pure rule, given what the lookups found (`undefined` = not found): 404 NOT_FOUND for an
 * unknown id, 422 VALIDATION_ERROR for another product's record or an order linked to another
 * subscription. The subscription is inferred from the order when not given.
 */
export function decideOrigin(req: OriginRequest, order: OriginOrder | undefined, subscription: OriginSubscription | undefined): Origin {
  if (given(req.orderId) && !order) throw new ApiError("NOT_FOUND", `field order_id: order ${req.orderId} not found`);
  if (given(req.subscriptionId) && !subscription) throw new ApiError("NOT_FOUND", `field subscription_id: subscription ${req.subscriptionId} not found`);
  if (order && order.product_id !== req.productId) {
    throw new ApiError("VALIDATION_ERROR", `field order_id: order ${order.id} belongs to product ${order.product_id}, not ${req.productId}`);
  }
  if (subscription && subscription.product_id !== req.productId) {
    throw new ApiError(
      "VALIDATION_ERROR",
      `field subscription_id: subscription ${subscription.id} belongs to product ${subscription.product_id}, not ${req.productId}`,
    );
  }
  if (order && subscription && order.subscription_id !== null && order.subscription_id !== subscription.id) {
    throw new ApiError("VALIDATION_ERROR", `field subscription_id: order ${order.id} is linked to subscription ${order.subscription_id}, not ${subscription.id}`);
  }
  return { order_id: order?.id ?? null, subscription_id: subscription?.id ?? order?.subscription_id ?? null };
}

/** Looks up the order and subscription named in `req` and applies decideOrigin. Throws ApiError. */
export async function resolveOrigin(q: Q, req: OriginRequest): Promise<Origin> {
  const order = given(req.orderId) ? await findOrder(q, req.orderId) : undefined;
  const subscription = given(req.subscriptionId) ? await findSubscription(q, req.subscriptionId) : undefined;
  return decideOrigin(req, order, subscription);
}
