// JSON text columns.
export function parseJsonObject(text: string): Record<string, unknown> {
  const v = JSON.parse(text) as unknown;
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export const iso = (ms: number): string => new Date(ms).toISOString();
