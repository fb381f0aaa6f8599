// Who is calling: the bearer token and the client address (behind a trusted proxy only).
import type { IncomingMessage } from "node:http";

/** The token from an `Authorization: Bearer <token>` value (HTTP header or graphql-ws connectionParams). */
export function bearerToken(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 256) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m ? m[1] : null;
}

/**
 * The caller's address for per-IP limits. X-Forwarded-For is believed only behind a proxy we run (TRUST_PROXY),
 * and then its last entry: the one our proxy appended, which a client cannot forge.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers["x-forwarded-for"];
    const last = (Array.isArray(forwarded) ? forwarded.join(",") : forwarded)?.split(",").pop()?.trim();
    if (last && last.length <= 64) return last;
  }
  return req.socket.remoteAddress ?? "unknown";
}
