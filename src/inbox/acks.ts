// Acknowledgements in batches (group commit, src/live/batcher.ts): the ackEnvelopes calls that arrive together are one
// statement on the shared pool (src/inbox/store.ts ackStatement), answered only after it committed. The statement
// removes each device's own items and runs what another domain attached to an acknowledgement (the messages domain
// marks envelopes delivered and queues receipts), so nothing is acknowledged without its consequences, or the reverse.
import { Batcher, itemByItemOnFailure } from "../live/batcher.ts";
import type { Actor } from "../deps.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import { countPerRequest } from "./rules.ts";
import { ackStatement, type AckFollowUp, type InboxStore } from "./store.ts";

export interface AckRequest {
  actor: Actor;
  ids: bigint[];
}

export function createAckBatcher(opts: {
  store: InboxStore;
  followUp: AckFollowUp | null;
  maxConcurrent: number;
  retentionExpiry: (from: Date) => Date;
  /** Told after commit what the batch queued, to publish live. */
  queued: (items: InboxItem[]) => void;
  onBatch?: (size: number) => void;
}) {
  const text = ackStatement(opts.followUp);

  async function runOnce(reqs: AckRequest[]): Promise<number[]> {
    const now = new Date();
    const { removed, queued } = await opts.store.acknowledge(text, now, opts.retentionExpiry(now), reqs);
    opts.queued(queued);
    return countPerRequest(reqs, removed);
  }

  const batcher = new Batcher<AckRequest, number>(itemByItemOnFailure(runOnce), { maxBatch: 128, maxConcurrent: opts.maxConcurrent, onBatch: opts.onBatch });
  return { submit: (req: AckRequest) => batcher.submit(req) };
}
