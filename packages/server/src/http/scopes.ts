// Management scopes (NOTES §2). `admin` satisfies every management route.
export const SCOPES = [
  "admin",
  "product:read",
  "product:write",
  "license:read",
  "license:write",
  "device:write",
  "event:read",
  "ops:read",
  "report:read",
  "report:export",
  "webhook:write",
] as const;

export type Scope = (typeof SCOPES)[number];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function scopeSatisfied(granted: readonly string[], required: Scope): boolean {
  return granted.includes("admin") || granted.includes(required);
}
