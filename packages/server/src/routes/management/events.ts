// /api/v1/events: the raw audit feed (NOTES §18, D7, D8). Newest first; `cursor` is the integer
// sequence the next page starts below. Secret-looking metadata is redacted on output.
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { responseMeta } from "../../http/envelope.js";
import { DateTime, errorResponses, ResponseMeta, StringEnum } from "../../http/schemas.js";
import { eventView, listEvents } from "../../store/audit-events.js";
import { clampLimit } from "../../store/pagination.js";
import { MANAGEMENT_ERRORS } from "./common.js";

const ACTOR_TYPES = ["api_key", "license", "oidc_subject", "system"] as const;
const ActorType = StringEnum(ACTOR_TYPES);

export const Event = Type.Object({
  sequence: Type.Integer({ description: "Monotonic per database; the feed is ordered by it." }),
  event_type: Type.String(),
  actor_type: ActorType,
  actor_id: Type.String(),
  resource_type: Type.String(),
  resource_id: Type.Optional(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown(), {
    description: "Audit metadata; runtime binding values are hashed and secret-looking values are redacted.",
  }),
  ip_address: Type.Optional(Type.String()),
  request_id: Type.Optional(Type.String({ description: "meta.request_id of the request that caused the event." })),
  created_at: DateTime,
});

const EventPageInfo = Type.Object({
  next_cursor: Type.Union([Type.Integer(), Type.Null()], { description: "Pass as `cursor` for the next (older) page; null on the last page." }),
});

const Filter = Type.String({ minLength: 1, maxLength: 200 });

const EventsQuery = Type.Object({
  cursor: Type.Optional(
    Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "Return events with sequence numbers lower than this cursor." }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: "Defaults to 50 and is clamped to 200." })),
  event_type: Type.Optional(Filter),
  resource_type: Type.Optional(Filter),
  resource_id: Type.Optional(Filter),
  actor_type: Type.Optional(ActorType),
});

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    "/events",
    {
      config: { scope: "event:read" },
      schema: {
        operationId: "listEvents",
        tags: ["events"],
        querystring: EventsQuery,
        response: {
          200: Type.Object({ data: Type.Array(Event), page_info: EventPageInfo, meta: ResponseMeta }),
          ...errorResponses(...MANAGEMENT_ERRORS, "INVALID_QUERY"),
        },
      },
    },
    async (req) => {
      const { cursor, limit, ...filters } = req.query;
      const page = await listEvents(app.lk.store.db, filters, clampLimit(limit), cursor ?? null);
      return { data: page.rows.map(eventView), page_info: { next_cursor: page.nextCursor }, meta: responseMeta(req) };
    },
  );
};
