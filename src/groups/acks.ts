// Group acknowledgements in batches (group commit, src/live/batcher.ts), like the inbox's: the ackEnvelopes calls
// naming group events that arrive together are one statement on the shared pool (cursor-store.ts ackStatement), answered
// only after it committed. In it the devices' cursors move and the follow-up records and queues the senders'
// delivered receipts (one receipt row per sender device, reader and group, listing the messages), so a cursor never
// moves without its receipts, or the reverse.
import { Batcher, itemByItemOnFailure } from "../live/batcher.ts";
import type { Actor } from "../deps.ts";
import { badInput } from "../errors.ts";
import { parseGroupEventId } from "./events.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import { ackStatement, type CursorStore } from "./cursor-store.ts";

/** Per ackGroupEvents call (ackEnvelopes has its own bound, routeAcks). */
export const MAX_GROUP_ACK_IDS = 1000;

export interface GroupAckRequest {
  actor: Actor;
  /** The highest seq acknowledged in each group. */
  tops: Map<string, bigint>;
}

/** What a batch's statement runs for the cursors that moved, and what becomes of the rows it queued. */
export interface CursorMoveFollowUp {
  /** CTEs reading `moved` and ending in `queued` (see ackStatement). */
  ctes: string;
  retentionExpiry(from: Date): Date;
  /** Told after commit what the batch queued, to publish live. */
  queued(items: InboxItem[]): void;
}

/** ackEnvelopes' group ids (g:<groupId>:<seq>): returns how many named a group of the device's. */
export function createGroupAcks(opts: {
  store: CursorStore;
  followUp: CursorMoveFollowUp;
  maxConcurrent: number;
  onBatch?: (size: number) => void;
}) {
  const text = ackStatement(opts.followUp.ctes);
  const key = (userId: string, deviceId: number, groupId: string) => `${userId}|${deviceId}|${groupId}`;

  /** Each request's answer: the groups it named that its device has a cursor in. */
  async function runOnce(reqs: GroupAckRequest[]): Promise<Set<string>[]> {
    const now = new Date();
    const moves = reqs.flatMap((r) => [...r.tops].map(([groupId, seq]) => ({ actor: r.actor, groupId, seq })));
    const { found, queued } = await opts.store.acknowledge(text, now, opts.followUp.retentionExpiry(now), moves);
    opts.followUp.queued(queued);
    const have = new Set(found.map((f) => key(f.userId, f.deviceId, f.groupId)));
    return reqs.map((r) => new Set([...r.tops.keys()].filter((g) => have.has(key(r.actor.userId, r.actor.deviceId, g)))));
  }

  const batcher = new Batcher<GroupAckRequest, Set<string>>(itemByItemOnFailure(runOnce), {
    maxBatch: 128,
    maxConcurrent: opts.maxConcurrent,
    onBatch: opts.onBatch,
  });

  return async function ack(device: Actor, ids: string[]): Promise<number> {
    const top = new Map<string, bigint>();
    const perGroup = new Map<string, number>();
    if (ids.length > MAX_GROUP_ACK_IDS) throw badInput(`at most ${MAX_GROUP_ACK_IDS} ids per call`);
    // Every id is read before any cursor moves: a malformed one (through ackEnvelopes, which routes "g:" ids here
    // unchecked) refuses the whole call instead of reaching the database.
    for (const id of ids) {
      const parsed = parseGroupEventId(id);
      if (!parsed) throw badInput("group event ids look like g:<groupId>:<seq>");
      if ((top.get(parsed.groupId) ?? -1n) < parsed.seq) top.set(parsed.groupId, parsed.seq);
      perGroup.set(parsed.groupId, (perGroup.get(parsed.groupId) ?? 0) + 1);
    }
    if (top.size === 0) return 0;
    const found = await batcher.submit({ actor: device, tops: top });
    // Another group's ids count for nothing: the answer cannot tell a stranger which groups exist.
    let valid = 0;
    for (const groupId of found) valid += perGroup.get(groupId)!;
    return valid;
  };
}
