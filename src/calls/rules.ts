// TURN REST API credentials (draft-uberti-behave-turn-rest, what coturn checks with use-auth-secret): a username that
// carries its own expiry and a password only the holder of the shared secret can make, so the TURN server needs no
// database of users and a leaked credential dies on its own.
import { createHmac } from "node:crypto";

export interface TurnCredential {
  /** "<unix expiry>:<userId>": coturn refuses it once the expiry has passed. */
  username: string;
  /** base64(HMAC-SHA1(secret, username)). */
  credential: string;
  expiresAt: Date;
}

/** The credential for `userId`, valid for `ttlSeconds` from `nowMs`. */
export function turnCredential(secret: string, userId: string, nowMs: number, ttlSeconds: number): TurnCredential {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new RangeError("ttlSeconds must be a positive integer");
  // The TURN REST API's user part must not contain the separator, or the expiry would be read from the wrong place.
  if (!userId || userId.includes(":")) throw new RangeError("userId must be non-empty and contain no ':'");
  const expiry = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiry}:${userId}`;
  return { username, credential: turnPassword(secret, username), expiresAt: new Date(expiry * 1000) };
}

/** The password coturn derives from a username under its static-auth-secret. */
export function turnPassword(secret: string, username: string): string {
  return createHmac("sha1", secret).update(username, "utf8").digest("base64");
}

/** The unix expiry a TURN REST username carries, or null when it carries none. */
export function usernameExpiry(username: string): number | null {
  const m = /^(\d{1,12}):/.exec(username);
  return m ? Number(m[1]) : null;
}
