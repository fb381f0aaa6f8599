// Group application messages in batches (group commit, src/live/batcher.ts): the sends that arrive together are one
// statement (append-store.ts), each answered only after it committed. A busy group's sends then take its row's lock
// once per batch instead of once per message, each holding it through a commit: one group's messages per second are
// no longer bounded by one commit's latency.
import { Batcher, itemByItemOnFailure } from "../live/batcher.ts";
import { badInput, notFound } from "../errors.ts";
import { staleEpoch } from "./rules.ts";
import type { AppendStore, GroupAppend } from "./append-store.ts";

export interface Stored {
  seq: bigint;
  epoch: number;
  createdAt: Date;
}

export function createGroupSends(opts: {
  store: AppendStore;
  maxConcurrent: number;
  maxQueued: number;
  onBatch?: (size: number) => void;
}) {
  async function runOnce(batch: GroupAppend[]): Promise<(Stored | Error)[]> {
    const at = new Date();
    const verdicts = await opts.store.append(at, batch);
    return verdicts.map((v) => {
      switch (v.verdict) {
        case "ok":
          return { seq: v.seq, epoch: v.epoch, createdAt: at };
        case "no_group":
          return notFound("no such group");
        case "other_group":
          return badInput("message is framed for another group");
        case "stale":
          return staleEpoch(v.groupEpoch);
      }
    });
  }

  const batcher = new Batcher<GroupAppend, Stored | Error>(itemByItemOnFailure(runOnce), {
    maxBatch: 128,
    maxConcurrent: opts.maxConcurrent,
    maxQueued: opts.maxQueued,
    onBatch: opts.onBatch,
  });

  /** Stores one application message; its seq, or the refusal (NOT_FOUND, BAD_USER_INPUT, STALE_EPOCH). */
  return async function append(item: GroupAppend): Promise<Stored> {
    const r = await batcher.submit(item);
    if (r instanceof Error) throw r;
    return r;
  };
}
