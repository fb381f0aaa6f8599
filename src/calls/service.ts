// Calls: the server's part is small on purpose. Signaling (offers, answers, ICE, hangups) travels as end-to-end
// encrypted live-only messages (sendMessage with online: true, see src/messages/), so the server neither sees nor
// keeps any SDP or ICE candidate; this service only hands out short-lived TURN credentials for the media relay.
import type { Config } from "../config.ts";
import type { Actor } from "../deps.ts";
import { turnCredential } from "./rules.ts";

export interface TurnServerInfo {
  urls: string[];
  username: string;
  credential: string;
  ttlSeconds: number;
  expiresAt: Date;
}

export type CallsService = ReturnType<typeof createCallsService>;

export function createCallsService(deps: { config: Pick<Config, "turn">; now?: () => number }) {
  const now = deps.now ?? Date.now;

  /** The TURN servers for this caller, as RTCIceServer entries; none configured gives an empty list. */
  function turnServers(actor: Actor): TurnServerInfo[] {
    const turn = deps.config.turn;
    if (!turn) return [];
    const c = turnCredential(turn.secret, actor.userId, now(), turn.ttlSeconds);
    return [{ urls: turn.urls, username: c.username, credential: c.credential, ttlSeconds: turn.ttlSeconds, expiresAt: c.expiresAt }];
  }

  return { turnServers };
}
