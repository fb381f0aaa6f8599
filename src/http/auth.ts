/** The token from an `Authorization: Bearer <token>` value (HTTP header or graphql-ws connectionParams). */
export function bearerToken(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 256) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m ? m[1] : null;
}
