// Acknowledgements in batches (group commit, src/live/batcher.ts): the ackEnvelopes calls that arrive together are one
// statement on the shared pool (src/inbox/store.ts ackStatement), answered only after it committed. The statement
// removes each device's own items and runs what another domain attached to an acknowledgement (the messages domain
// marks envelopes delivered and queues receipts), so nothing is acknowledged without its consequences, or the reverse.
import { Batcher, type Settled } from "../live/batcher.ts";
import type { Actor } from "../deps.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import { countPerRequest } from "./rules.ts";
import { ackStatement, type AckFollowUp, type InboxStore } from "./store.ts";

export interface AckRequest {
  actor: Actor;
  ids: bigint[];
}

// A deadlock between two batches is resolved by PostgreSQL aborting one of them: that one is simply run again.
const isDeadlock = (e: unknown) => (e as { code?: string })?.code === "40P01";

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

  async function run(reqs: AckRequest[]): Promise<Settled<number>[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await runOnce(reqs)).map((value) => ({ ok: true, value }));
      } catch (error) {
        if (isDeadlock(error) && attempt < 3) continue;
        if (reqs.length === 1) return [{ ok: false, error }];
        // Nothing of the batch was applied: each request is tried alone and gets its own answer.
        const out: Settled<number>[] = [];
        for (const r of reqs) out.push((await run([r]))[0]);
        return out;
      }
    }
  }

  const batcher = new Batcher<AckRequest, number>(run, { maxBatch: 128, maxConcurrent: opts.maxConcurrent, onBatch: opts.onBatch });
  return { submit: (req: AckRequest) => batcher.submit(req) };
}
