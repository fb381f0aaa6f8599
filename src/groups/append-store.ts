// Application messages written in batches (sends.ts): the sends to any groups that arrive together are numbered and
// stored in one statement. The tables are the groups domain's (store.ts holds the rest of their SQL).
import type { Actor, ServiceDeps } from "../deps.ts";
import { base64 } from "../bytes.ts";
import { plainArray } from "../db/arrays.ts";
import { unsizedArray } from "../db/plans.ts";

/** One application message to store: the sender, its group, the epoch and MLS group id it is framed with. */
export interface GroupAppend {
  actor: Actor;
  groupId: string;
  epoch: number;
  mlsGroupId: Uint8Array;
  message: Uint8Array;
}

/** What became of it: stored with its seq, or why not (the group's epoch when it was too old or new). */
export type AppendVerdict =
  | { verdict: "ok"; seq: bigint; epoch: number }
  | { verdict: "no_group" | "other_group" }
  | { verdict: "stale"; groupEpoch: number };

export type AppendStore = ReturnType<typeof createAppendStore>;

// The groups rows are locked in id order (two batches cannot deadlock) with NO KEY UPDATE, which the KEY SHARE locks
// of group_messages' foreign key do not wait for; each accepted message then takes the next seq of its group in the
// order given, and every group's last_seq moves once. A sender must still receive the group, its message must be
// framed for this MLS group, and the epoch must be the group's or the one before (messages in flight while a commit
// was accepted); the rest of the batch is stored whatever one message's verdict. Its arrays are unsized
// (src/db/plans.ts): planned for their lengths, the statement was planned again on nine calls in ten.
export const APPEND = `
WITH k AS (
  SELECT * FROM unnest(${["$2::uuid[]", "$3::uuid[]", "$4::int[]", "$5::int[]", "$6::text[]", "$7::text[]"].map(unsizedArray).join(", ")})
    WITH ORDINALITY AS k(g, u, d, epoch, mls, msg, n)
), locked AS (
  SELECT id, epoch, mls_group_id FROM groups WHERE id IN (SELECT g FROM k) ORDER BY id FOR NO KEY UPDATE
), judged AS (
  SELECT k.n, k.g, k.u, k.d, k.epoch, k.msg, l.epoch AS group_epoch,
    CASE WHEN l.id IS NULL OR NOT EXISTS (
           SELECT 1 FROM group_devices c
           WHERE c.group_id = k.g AND c.user_id = k.u AND c.device_id = k.d AND c.until_seq IS NULL) THEN 'no_group'
         WHEN l.mls_group_id <> decode(k.mls, 'base64') THEN 'other_group'
         WHEN k.epoch > l.epoch OR k.epoch < l.epoch - 1 THEN 'stale'
         ELSE 'ok' END AS verdict
  FROM k LEFT JOIN locked l ON l.id = k.g
), ok AS (
  SELECT j.*, row_number() OVER (PARTITION BY j.g ORDER BY j.n) AS r FROM judged j WHERE j.verdict = 'ok'
), bump AS (
  UPDATE groups x SET last_seq = x.last_seq + c.n FROM (SELECT g, count(*) AS n FROM ok GROUP BY g) c
  WHERE x.id = c.g
  RETURNING x.id, x.last_seq - c.n AS base
), ins AS (
  INSERT INTO group_messages (group_id, seq, kind, epoch, sender_user_id, sender_device_id, message, created_at)
  SELECT ok.g, b.base + ok.r, 'APPLICATION', ok.epoch, ok.u, ok.d, decode(ok.msg, 'base64'), $1::timestamptz
  FROM ok JOIN bump b ON b.id = ok.g
  RETURNING group_id, seq
)
SELECT j.n::int AS n, j.verdict, j.group_epoch, j.epoch, (b.base + o.r)::text AS seq
FROM judged j LEFT JOIN ok o ON o.n = j.n LEFT JOIN bump b ON b.id = o.g`;

export function createAppendStore({ sql }: Pick<ServiceDeps, "sql">) {
  /** Stores the batch at `at`; a verdict per message, in order. */
  async function append(at: Date, batch: GroupAppend[]): Promise<AppendVerdict[]> {
    const rows = await sql<{ n: number; verdict: string; group_epoch: number | null; epoch: number; seq: string | null }>(APPEND, [
      at,
      plainArray(batch.map((b) => b.groupId)),
      plainArray(batch.map((b) => b.actor.userId)),
      plainArray(batch.map((b) => b.actor.deviceId)),
      plainArray(batch.map((b) => b.epoch)),
      plainArray(batch.map((b) => base64(b.mlsGroupId))),
      plainArray(batch.map((b) => base64(b.message))),
    ]);
    const out: AppendVerdict[] = new Array(batch.length);
    for (const r of rows) {
      out[r.n - 1] =
        r.verdict === "ok"
          ? { verdict: "ok", seq: BigInt(r.seq!), epoch: r.epoch }
          : r.verdict === "stale"
            ? { verdict: "stale", groupEpoch: r.group_epoch! }
            : { verdict: r.verdict as "no_group" | "other_group" };
    }
    return out;
  }

  return { append };
}
