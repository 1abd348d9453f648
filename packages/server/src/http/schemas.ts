// TypeBox schemas shared by routes: envelopes, meta, errors, list parameters. One definition gives
// the TypeScript type, the runtime validation and the generated OpenAPI document.
import { type TSchema, Type } from "@sinclair/typebox";
import { ERROR_CODES, type ErrorCode } from "./errors.js";

export const ResponseMeta = Type.Object({ request_id: Type.String(), timestamp: Type.String({ format: "date-time" }) });

export const ErrorObject = Type.Object({
  code: Type.String(),
  message: Type.String(),
  detail: Type.Optional(Type.String()),
});

export const Signature = Type.Object({
  alg: Type.Literal("Ed25519"),
  kid: Type.String(),
  value: Type.String({ description: "Base64 Ed25519 signature over JSON.stringify(data)." }),
});

export const ErrorEnvelope = Type.Object({
  error: ErrorObject,
  signature: Type.Optional(Signature),
  meta: ResponseMeta,
});

/** A string enum as plain JSON Schema (`{type:"string", enum:[…]}`), typed as the union of its values. */
export const StringEnum = <const T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });

export const Metadata = Type.Record(Type.String(), Type.Unknown());
export const DateTime = Type.String({ format: "date-time" });

export const PageInfo = Type.Object({ next_cursor: Type.Union([Type.String(), Type.Null()]) });

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, description: "Defaults to 50 and is clamped to 200." })),
  cursor: Type.Optional(Type.String({ description: "page_info.next_cursor of the previous page." })),
});

export const IdParams = Type.Object({ id: Type.String() });

export const IdempotencyHeader = (required: boolean) =>
  Type.Object({
    "idempotency-key": required ? Type.String({ description: "1-255 visible ASCII characters" }) : Type.Optional(Type.String()),
  });

export const dataEnvelope = <T extends TSchema>(data: T) => Type.Object({ data, meta: ResponseMeta });
export const listEnvelope = <T extends TSchema>(item: T) => Type.Object({ data: Type.Array(item), page_info: PageInfo, meta: ResponseMeta });
export const signedEnvelope = <T extends TSchema>(data: T) => Type.Object({ data, signature: Signature, meta: ResponseMeta });

/** Error responses for the OpenAPI document, keyed by status, each listing its possible codes. */
export function errorResponses(...codes: ErrorCode[]): Record<number, TSchema> {
  const byStatus = new Map<number, string[]>();
  for (const c of new Set(codes)) {
    const s = ERROR_CODES[c].status;
    byStatus.set(s, [...(byStatus.get(s) ?? []), c]);
  }
  const out: Record<number, TSchema> = {};
  for (const [status, list] of byStatus) out[status] = Type.Object(ErrorEnvelope.properties, { description: list.join(", ") });
  return out;
}
