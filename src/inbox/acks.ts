// Acknowledgements in batches (group commit, src/live/batcher.ts): the ackEnvelopes calls that arrive together are one
// statement on the shared pool, answered only after it committed. The statement removes each device's own items
// and runs what other domains attached to an acknowledgement (the messages domain marks envelopes delivered and
// queues receipts) in the same statement, so nothing is acknowledged without its consequences, or the reverse.
import { Batcher, type Settled } from "../live/batcher.ts";
import type { Actor } from "../deps.ts";
import type { Sql } from "../db/database.ts";
import type { InboxItem } from "../generated/prisma/client.ts";

/**
 * What another domain runs on every acknowledgement batch: CTEs that read `acked` (the removed items: id, user_id,
 * device_id, kind, message_id) and end in one named `queued` holding the inbox rows they added (all columns of
 * inbox_items). Placeholders: $1 the batch's time (timestamptz), $2 the same as ISO text, $3 the retention expiry.
 */
export interface AckFollowUp {
  ctes: string;
}

export interface AckRequest {
  actor: Actor;
  ids: bigint[];
}

type Row = {
  k: "d" | "q";
  id: string;
  u: string;
  d: number;
  kind: string | null;
  m: string | null;
  c: string | null;
  p: Record<string, unknown> | null;
  at: number | null;
  e: number | null;
};

const NOTHING_QUEUED =
  "queued AS (SELECT * FROM inbox_items WHERE $1::timestamptz IS NULL AND $2::text IS NULL AND $3::timestamptz IS NULL)";

/**
 * The inbox's part of a follow-up: one receipt row per sender device and reader, listing the messages of `source`
 * (a CTE with id, seq, conversation_id, sender_user_id, recipient_user_id, expires_at) in their order. The row's
 * message_id and conversation_id are the first message's; it expires with the last of them (or at retention).
 * Named `queued`, as AckFollowUp wants.
 */
export function coalescedReceipts(source: string, kind: "DELIVERED" | "READ"): string {
  return `queued AS (
  INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, payload, created_at, expires_at)
  SELECT d.user_id, d.device_id, 'receipt', (array_agg(s.id ORDER BY s.seq))[1], (array_agg(s.conversation_id))[1],
         jsonb_build_object('userId', s.recipient_user_id::text, 'kind', '${kind}', 'at', $2::text,
                            'messageIds', jsonb_agg(s.id::text ORDER BY s.seq)),
         $1::timestamptz, max(COALESCE(s.expires_at, $3::timestamptz))
  FROM ${source} s JOIN devices d ON d.user_id = s.sender_user_id AND d.active
  GROUP BY d.user_id, d.device_id, s.recipient_user_id
  RETURNING *
)`;
}

/** The statement: the items locked in id order (two batches naming the same item cannot deadlock), then removed. */
export function ackStatement(followUp: AckFollowUp | null): string {
  return `
WITH k AS (
  SELECT DISTINCT u, d, id FROM unnest($4::uuid[], $5::int[], $6::bigint[]) AS k(u, d, id)
), locked AS (
  SELECT i.id FROM inbox_items i
  WHERE i.id = ANY(ARRAY(SELECT id FROM k)) AND (i.user_id, i.device_id, i.id) IN (SELECT u, d, id FROM k)
  ORDER BY i.id FOR UPDATE OF i
), acked AS (
  DELETE FROM inbox_items i USING locked WHERE i.id = locked.id
  RETURNING i.id, i.user_id, i.device_id, i.kind, i.message_id
), ${followUp ? followUp.ctes : NOTHING_QUEUED}
SELECT 'd' AS k, id::text AS id, user_id::text AS u, device_id AS d, NULL::text AS kind, NULL::text AS m,
       NULL::text AS c, NULL::jsonb AS p, NULL::float8 AS at, NULL::float8 AS e
FROM acked
UNION ALL
SELECT 'q', id::text, user_id::text, device_id, kind, message_id::text, conversation_id::text, payload,
       extract(epoch FROM created_at)::float8 * 1000, extract(epoch FROM expires_at)::float8 * 1000
FROM queued`;
}

/** The queue rows a batch added, as the shapers take them (only the columns a statement's `queued` carries). */
function queuedItem(r: Row): InboxItem {
  return {
    id: BigInt(r.id),
    userId: r.u,
    deviceId: r.d,
    kind: r.kind!,
    messageId: r.m,
    conversationId: r.c,
    senderUserId: null,
    senderDeviceId: null,
    ciphertextType: null,
    body: null,
    payload: r.p as InboxItem["payload"],
    createdAt: new Date(r.at!),
    expiresAt: new Date(r.e!),
  };
}

/** Each request's count: the removed rows of its device among its ids, each row counted for one request only. */
export function countPerRequest(reqs: AckRequest[], removed: { id: string; u: string; d: number }[]): number[] {
  const gone = new Set(removed.map((r) => `${r.u}|${r.d}|${r.id}`));
  return reqs.map((req) => {
    let n = 0;
    for (const id of new Set(req.ids)) {
      const key = `${req.actor.userId}|${req.actor.deviceId}|${id}`;
      if (gone.delete(key)) n++;
    }
    return n;
  });
}

// A deadlock between two batches is resolved by PostgreSQL aborting one of them: that one is simply run again.
const DEADLOCK = "40P01";
const isDeadlock = (e: unknown) => (e as { code?: string })?.code === DEADLOCK;

export function createAckBatcher(opts: {
  sql: Sql;
  maxConcurrent: number;
  retentionExpiry: (from: Date) => Date;
  followUp: () => AckFollowUp | null;
  /** Told after commit what the batch queued, to publish live. */
  queued: (items: InboxItem[]) => void;
}) {
  let text: string | null = null;

  async function runOnce(reqs: AckRequest[]): Promise<number[]> {
    text ??= ackStatement(opts.followUp());
    const now = new Date();
    const u: string[] = [];
    const d: number[] = [];
    const ids: string[] = [];
    for (const r of reqs) {
      for (const id of r.ids) {
        u.push(r.actor.userId);
        d.push(r.actor.deviceId);
        ids.push(id.toString());
      }
    }
    const rows = await opts.sql<Row>(text, [now, now.toISOString(), opts.retentionExpiry(now), u, d, ids]);
    opts.queued(rows.filter((r) => r.k === "q").map(queuedItem));
    return countPerRequest(reqs, rows.filter((r) => r.k === "d"));
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

  const batcher = new Batcher<AckRequest, number>(run, { maxBatch: 128, maxConcurrent: opts.maxConcurrent });
  return { submit: (req: AckRequest) => batcher.submit(req) };
}
