// The cursor table's acknowledgement statement: group_devices.acked_seq moves here, in batches (acks.ts). It is
// the groups domain's table (store.ts holds the rest of its SQL); the statement carries the follow-up CTEs the
// receipts store and the inbox own, as the inbox's acknowledgement statement carries the messages domain's.
import type { Actor, ServiceDeps } from "../deps.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import { queuedRows, type AckRow } from "../inbox/store.ts";

export type CursorStore = ReturnType<typeof createCursorStore>;

export function createCursorStore({ sql }: Pick<ServiceDeps, "sql">) {
  /**
   * One batch of acknowledgements in one statement (`text` is ackStatement's): each device's cursor in each group
   * moves forward to its seq (never back), with what the follow-up does for the moves. Returns the memberships
   * found (a device's group it has a cursor in) and the inbox rows the follow-up queued.
   */
  async function acknowledge(text: string, at: Date, retainUntil: Date, moves: { actor: Actor; groupId: string; seq: bigint }[]) {
    const rows = await sql<AckRow>(text, [
      at,
      at.toISOString(),
      retainUntil,
      moves.map((m) => m.actor.userId),
      moves.map((m) => m.actor.deviceId),
      moves.map((m) => m.groupId),
      moves.map((m) => m.seq.toString()),
    ]);
    const found: { userId: string; deviceId: number; groupId: string }[] = [];
    const queued: InboxItem[] = [];
    for (const r of rows) {
      if (r.row_kind === "moved") found.push({ userId: r.user_id, deviceId: r.device_id, groupId: r.conversation_id! });
      else queued.push(queuedRows.parse(r));
    }
    return { found, queued };
  }

  return { acknowledge };
}

/**
 * The statement of a batch of group acknowledgements. $4-$7: user ids, device ids, group ids and seqs, one per
 * (device, group). The cursor rows of every device of the acknowledging users in those groups are locked in key
 * order (two batches cannot deadlock on them), and the named ones move to the highest seq named. Locking the user's
 * other devices too makes two batches acknowledging for one user take turns, and `old` then holds those devices'
 * latest cursors (a locked row is read as last committed), so the follow-up can tell what the user already had.
 * `followUp` holds CTEs reading `moved` (group_id, user_id, device_id, from_seq, to_seq, until_seq) and `old`
 * (group_id, user_id, device_id, from_seq, acked_seq, until_seq, before this batch) and ending in one named `queued`
 * (inbox rows, RETURNING *); $1-$3 as in the inbox's ackStatement.
 */
export function ackStatement(followUp: string): string {
  return `
WITH k AS (
  SELECT u, d, g, max(s) AS s FROM unnest($4::uuid[], $5::int[], $6::uuid[], $7::bigint[]) AS k(u, d, g, s)
  GROUP BY u, d, g
), old AS (
  SELECT c.group_id, c.user_id, c.device_id, c.from_seq, c.acked_seq, c.until_seq FROM group_devices c
  WHERE (c.group_id, c.user_id) IN (SELECT g, u FROM k)
  ORDER BY c.group_id, c.user_id, c.device_id FOR UPDATE OF c
), moved AS (
  UPDATE group_devices c SET acked_seq = GREATEST(c.acked_seq, k.s) FROM k JOIN old
    ON old.group_id = k.g AND old.user_id = k.u AND old.device_id = k.d
  WHERE c.group_id = k.g AND c.user_id = k.u AND c.device_id = k.d
  RETURNING c.group_id, c.user_id, c.device_id, old.acked_seq AS from_seq, c.acked_seq AS to_seq, c.until_seq
), ${followUp}
SELECT 'moved' AS row_kind, NULL::text AS id, user_id::text AS user_id, device_id, NULL::text AS kind,
       NULL::text AS message_id, group_id::text AS conversation_id, NULL::jsonb AS payload, NULL::float8 AS created_ms,
       NULL::float8 AS expires_ms
FROM moved
UNION ALL
SELECT 'queued', ${queuedRows.columns}
FROM queued`;
}
