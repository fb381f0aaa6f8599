// The inbox's pure rules: queue item ids, how long an item is kept, and which acknowledged ids are whose.
import { badInput } from "../errors.ts";
import { parseInt64 } from "../ids.ts";

export const MAX_ACK_IDS = 1000;
// Queue item ids are decimal; group event ids are "g:<groupId>:<seq>".
export const MAX_ACK_ID_CHARS = 64;
/** Ids of live-only envelopes (never queued) start with this; acknowledging one does nothing. */
export const LIVE_ID_PREFIX = "live:";

/** A queue item id as the client gives it back (decimal, as the inbox hands it out). */
export function parseItemId(id: string): bigint {
  const v = parseInt64(id);
  if (v === null) throw badInput("queue item ids are decimal integers (64-bit)");
  return v;
}

/** When an item queued at `from` is dropped unacknowledged (the queue's retention bound). */
export function retentionExpiry(from: Date, retentionSeconds: number): Date {
  return new Date(from.getTime() + retentionSeconds * 1000);
}

/**
 * Splits acknowledged ids between the inbox's own items (parsed, de-duplicated) and the other sources that feed the
 * inbox (each claims its own ids). Live-only envelope ids are dropped: a client acknowledging them like any
 * envelope gets a harmless no-op. Throws on an id nobody claims that is not a queue item id either.
 */
export function routeAcks<S extends { owns(id: string): boolean }>(
  ids: string[],
  sources: readonly S[],
): { own: bigint[]; routed: Map<S, string[]> } {
  if (ids.length > MAX_ACK_IDS) throw badInput(`at most ${MAX_ACK_IDS} ids per call`);
  const routed = new Map<S, string[]>();
  const own = new Set<bigint>();
  for (const id of ids) {
    if (id.length > MAX_ACK_ID_CHARS) throw badInput(`ids are at most ${MAX_ACK_ID_CHARS} characters`);
    if (id.startsWith(LIVE_ID_PREFIX)) continue;
    const source = sources.find((s) => s.owns(id));
    if (!source) own.add(parseItemId(id));
    else if (routed.has(source)) routed.get(source)!.push(id);
    else routed.set(source, [id]);
  }
  return { own: [...own], routed };
}

/**
 * The answer to each acknowledgement of a batch: its own device's removed rows among its own ids, a row named by two
 * requests of the batch counted for the first only.
 */
export function countPerRequest(
  reqs: { actor: { userId: string; deviceId: number }; ids: bigint[] }[],
  removed: { id: string; userId: string; deviceId: number }[],
): number[] {
  const gone = new Set(removed.map((r) => `${r.userId}|${r.deviceId}|${r.id}`));
  return reqs.map((req) => {
    let n = 0;
    for (const id of new Set(req.ids)) if (gone.delete(`${req.actor.userId}|${req.actor.deviceId}|${id}`)) n++;
    return n;
  });
}
