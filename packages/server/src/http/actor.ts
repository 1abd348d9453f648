// Who did it: the audit-event fields that come from the request.
import type { FastifyRequest } from "fastify";
import type { EventType } from "../domain/event-types.js";
import type { EventInput } from "../store/audit-events.js";

export function managementEvent(
  req: FastifyRequest,
  event_type: EventType,
  resource_type: string,
  resource_id: string,
  metadata: Record<string, unknown> = {},
): EventInput {
  return {
    event_type,
    actor_type: "api_key",
    actor_id: req.principal?.id ?? "unknown",
    resource_type,
    resource_id,
    metadata,
    ip_address: req.ip,
    request_id: req.id,
    created_at: req.server.lk.clock.now(),
  };
}
