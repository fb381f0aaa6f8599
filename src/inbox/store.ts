// The inbox's tables: the only code that reads or writes inbox_items (SQL and Prisma). Two statements join the
// accounts domain's devices (DEVICES_TABLE): the receipt rows an acknowledgement writes go to the sender's active
// devices within that one statement, and a user's deactivated devices' queues are dropped in one.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { base64, bytes } from "../bytes.ts";
import { Prisma, type InboxItem } from "../generated/prisma/client.ts";
import { DEVICES_TABLE } from "../accounts/store.ts";
import { plainArray } from "../db/arrays.ts";
import type { EnvelopeCopy, NewInboxItem } from "./events.ts";

export type InboxStore = ReturnType<typeof createInboxStore>;

/** A row of the `item` CTE of EnvelopeWrite, as the statement that ran it returns it. */
export interface WrittenEnvelope {
  id: string;
  userId: string;
  deviceId: number;
  messageId: string;
  conversationId: string;
}

export function createInboxStore({ prisma, sql }: Pick<ServiceDeps, "prisma" | "sql">) {
  /** Adds items in the caller's transaction (one INSERT). */
  async function insert(tx: Tx, items: NewInboxItem[]): Promise<InboxItem[]> {
    if (items.length === 0) return [];
    return tx.inboxItem.createManyAndReturn({
      data: items.map((i) => ({
        userId: i.userId,
        deviceId: i.deviceId,
        kind: i.kind,
        messageId: i.messageId ?? null,
        conversationId: i.conversationId ?? null,
        senderUserId: i.senderUserId ?? null,
        senderDeviceId: i.senderDeviceId ?? null,
        ciphertextType: i.ciphertextType ?? null,
        body: i.body ? bytes(i.body) : null,
        payload: i.payload ?? undefined,
        ...(i.createdAt ? { createdAt: i.createdAt } : {}),
        expiresAt: i.expiresAt,
      })),
    });
  }

  /** The device's unexpired items after `after`, in order. */
  async function read(actor: Actor, after: bigint, limit: number, now: Date): Promise<InboxItem[]> {
    // Raw: every inbox subscription reads its queue once on connect, and a raw statement allocates well under what
    // findMany does per call (measured with the sampling heap profiler), garbage each connect would leave behind.
    return prisma.$queryRaw<InboxItem[]>`
      SELECT id, user_id::text AS "userId", device_id AS "deviceId", kind, message_id::text AS "messageId",
        conversation_id::text AS "conversationId", sender_user_id::text AS "senderUserId",
        sender_device_id AS "senderDeviceId", ciphertext_type AS "ciphertextType", body, payload,
        created_at AS "createdAt", expires_at AS "expiresAt"
      FROM inbox_items
      WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId} AND id > ${after}::bigint
        AND expires_at > ${now}
      ORDER BY id LIMIT ${limit}`;
  }

  /** The last queue id drawn (a sequence: it only grows, and moves on every insert, rolled back or not). */
  async function lastId(): Promise<bigint> {
    const [row] = await sql<{ v: string }>(`SELECT last_value::text AS v FROM inbox_items_id_seq`, []);
    return BigInt(row.v);
  }

  /** For each device, the ids of its unexpired items after its floor, at most `perDevice`: one statement for all. */
  async function idsAfter(devices: { userId: string; deviceId: number; after: bigint }[], perDevice: number) {
    if (devices.length === 0) return [];
    return sql<{ userId: string; deviceId: number; id: string }>(
      `SELECT k.u::text AS "userId", k.d AS "deviceId", i.id::text AS id
       FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS k(u, d, after)
       CROSS JOIN LATERAL (SELECT id FROM inbox_items WHERE user_id = k.u AND device_id = k.d AND id > k.after
                           AND expires_at > now() ORDER BY id LIMIT $4) i`,
      [devices.map((d) => d.userId), devices.map((d) => d.deviceId), devices.map((d) => d.after.toString()), perDevice],
    );
  }

  /** Drops the undelivered copies of a message (deleted for everyone). */
  async function removeEnvelopesOf(tx: Tx, messageId: string): Promise<void> {
    await tx.inboxItem.deleteMany({ where: { messageId, kind: "envelope" } });
  }

  /** Drops the queues of the user's deactivated devices: nobody can acknowledge them any more. */
  async function removeQueuesOfInactiveDevices(tx: Tx, userId: string): Promise<void> {
    await tx.$executeRaw`
      DELETE FROM inbox_items i USING ${Prisma.raw(DEVICES_TABLE)} d
      WHERE d.user_id = ${userId}::uuid AND NOT d.active AND i.user_id = d.user_id AND i.device_id = d.device_id`;
  }

  /** Deletes expired items (self-destructed or past retention). */
  async function sweep(now: Date): Promise<number> {
    const { count } = await prisma.inboxItem.deleteMany({ where: { expiresAt: { lte: now } } });
    return count;
  }

  /** Items waiting in every queue, and the age of the oldest (its id is the smallest: ids only grow). */
  async function depth(): Promise<{ items: number; oldestAgeSeconds: number }> {
    const [row] = await prisma.$queryRaw<{ items: number; oldest: Date | null }[]>`
      SELECT (SELECT count(*)::int FROM inbox_items) AS items,
             (SELECT created_at FROM inbox_items ORDER BY id LIMIT 1) AS oldest`;
    return { items: row.items, oldestAgeSeconds: row.oldest ? Math.max(0, (Date.now() - row.oldest.getTime()) / 1000) : 0 };
  }

  /**
   * One acknowledgement batch in one statement (see ackStatement; `text` is the statement with the follow-up in
   * it): returns the removed rows and the rows the follow-up queued.
   */
  async function acknowledge(
    text: string,
    at: Date,
    retainUntil: Date,
    acks: { actor: Actor; ids: bigint[] }[],
  ): Promise<{ removed: { id: string; userId: string; deviceId: number }[]; queued: InboxItem[] }> {
    const users: string[] = [];
    const devices: number[] = [];
    const ids: string[] = [];
    for (const a of acks) {
      for (const id of a.ids) {
        users.push(a.actor.userId);
        devices.push(a.actor.deviceId);
        ids.push(id.toString());
      }
    }
    const rows = await sql<AckRow>(text, [at, at.toISOString(), retainUntil, plainArray(users), plainArray(devices), plainArray(ids)]);
    const removed = [];
    const queued = [];
    for (const r of rows) {
      if (r.row_kind === "removed") removed.push({ id: r.id, userId: r.user_id, deviceId: r.device_id });
      else queued.push(queuedItem(r));
    }
    return { removed, queued };
  }

  return { insert, read, lastId, idsAfter, removeEnvelopesOf, removeQueuesOfInactiveDevices, sweep, acknowledge, depth };
}

/**
 * What another domain runs in every acknowledgement statement (the messages domain marks envelopes delivered): CTEs
 * that read `acked` (the removed rows: id, user_id, device_id, kind, message_id) and end in one named `queued`
 * holding the inbox rows they added (RETURNING *). Placeholders: $1 the batch's time (timestamptz), $2 the same as
 * ISO text, $3 the retention expiry (timestamptz).
 */
export interface AckFollowUp {
  ctes: string;
}

const NOTHING_QUEUED =
  "queued AS (SELECT * FROM inbox_items WHERE $1::timestamptz IS NULL AND $2::text IS NULL AND $3::timestamptz IS NULL)";

/**
 * The acknowledgement statement: the named items of each device locked in id order (two batches naming the same
 * item cannot deadlock) and removed, then the follow-up. $4-$6: user ids, device ids and item ids, one per item.
 */
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
SELECT 'removed' AS row_kind, id::text AS id, user_id::text AS user_id, device_id, NULL::text AS kind,
       NULL::text AS message_id, NULL::text AS conversation_id, NULL::jsonb AS payload, NULL::float8 AS created_ms,
       NULL::float8 AS expires_ms
FROM acked
UNION ALL
SELECT 'queued', ${queuedRows.columns}
FROM queued`;
}

/**
 * The rows a `queued` CTE wrote, as an acknowledgement statement returns them after its row_kind column (the
 * columns of AckRow, in order), and their reading back: the groups domain's acknowledgement statement ends the same way.
 */
export const queuedRows = {
  columns: `id::text, user_id::text, device_id, kind, message_id::text, conversation_id::text, payload,
       extract(epoch FROM created_at)::float8 * 1000, extract(epoch FROM expires_at)::float8 * 1000`,
  parse: (r: AckRow) => queuedItem(r),
};

export type AckRow = {
  row_kind: "removed" | "moved" | "queued";
  id: string;
  user_id: string;
  device_id: number;
  kind: string | null;
  message_id: string | null;
  conversation_id: string | null;
  payload: Record<string, unknown> | null;
  created_ms: number | null;
  expires_ms: number | null;
};

/** A row the follow-up queued, with the columns its shaper reads (receipts carry no sender or body). */
function queuedItem(r: AckRow): InboxItem {
  return {
    id: BigInt(r.id),
    userId: r.user_id,
    deviceId: r.device_id,
    kind: r.kind!,
    messageId: r.message_id,
    conversationId: r.conversation_id,
    senderUserId: null,
    senderDeviceId: null,
    ciphertextType: null,
    body: null,
    payload: r.payload as InboxItem["payload"],
    createdAt: new Date(r.created_ms!),
    expiresAt: new Date(r.expires_ms!),
  };
}

/**
 * Receipt rows written inside an acknowledgement statement: one per sender device and reader, listing the
 * messages of the CTE `source` (id, seq, conversation_id, sender_user_id, recipient_user_id, expires_at) in their
 * order. The row's message_id and conversation_id are the first message's; it expires with the last of them (or at
 * retention). The inbox owns the SQL; the messages store places it in its follow-up.
 */
export const receiptWrite = {
  cte(source: string, kind: "DELIVERED" | "READ"): string {
    return `queued AS (
  INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, payload, created_at, expires_at)
  SELECT d.user_id, d.device_id, 'receipt', r.message_id, r.conversation_id, r.payload, $1::timestamptz, r.expires_at
  FROM (
    SELECT s.sender_user_id, (array_agg(s.id ORDER BY s.seq))[1] AS message_id, (array_agg(s.conversation_id))[1] AS conversation_id,
           jsonb_build_object('userId', s.recipient_user_id::text, 'kind', '${kind}', 'at', $2::text,
                              'messageIds', jsonb_agg(s.id::text ORDER BY s.seq)) AS payload,
           max(COALESCE(s.expires_at, $3::timestamptz)) AS expires_at
    FROM ${source} s GROUP BY s.sender_user_id, s.recipient_user_id
  ) r JOIN ${DEVICES_TABLE} d ON d.user_id = r.sender_user_id AND d.active
  RETURNING *
)`;
  },
  /**
   * The same for group messages (ids g:<group>:<seq>, as groups/events.ts groupEventId writes them): one row per
   * sender device, reader and group, listing the
   * messages of the CTE `source` (group_id, seq, sender_user_id, reader_user_id). Group messages expire only by
   * retention ($3).
   */
  groupCte(source: string, kind: "DELIVERED" | "READ"): string {
    return `queued AS (
  INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, payload, created_at, expires_at)
  SELECT d.user_id, d.device_id, 'receipt', NULL, r.group_id, r.payload, $1::timestamptz, $3::timestamptz
  FROM (
    SELECT s.group_id, s.sender_user_id,
           jsonb_build_object('userId', s.reader_user_id::text, 'kind', '${kind}', 'at', $2::text,
                              'messageIds', jsonb_agg('g:' || s.group_id::text || ':' || s.seq::text ORDER BY s.seq)) AS payload
    FROM ${source} s GROUP BY s.group_id, s.sender_user_id, s.reader_user_id
  ) r JOIN ${DEVICES_TABLE} d ON d.user_id = r.sender_user_id AND d.active
  RETURNING *
)`;
  },
};

/**
 * Envelope queue rows written inside the statement that stores their messages: one round trip for a batch of sends
 * (the hot path). The inbox owns the SQL; the messages store places it in its statement.
 */
export const envelopeWrite = {
  /** Parameters the CTE takes, in order (see cte). */
  params(copies: EnvelopeCopy[]): unknown[] {
    return [
      plainArray(copies.map((c) => c.userId)),
      plainArray(copies.map((c) => c.deviceId)),
      plainArray(copies.map((c) => c.messageId)),
      plainArray(copies.map((c) => c.ciphertextType)),
      plainArray(copies.map((c) => base64(c.body))),
      plainArray(copies.map((c) => (c.selfDestruct ? "t" : "f"))),
      plainArray(copies.map((c) => c.expiresAt.toISOString())),
    ];
  },
  /**
   * True while a copy of the message `messageId` (an SQL expression) is queued and unexpired at `now` (one too): the
   * messages domain keeps a message's row until then. Served by inbox_items_message_idx.
   */
  queued(messageId: string, now: string): string {
    return `EXISTS (SELECT 1 FROM inbox_items i WHERE i.message_id = ${messageId} AND i.kind = 'envelope' AND i.expires_at > ${now})`;
  },
  /**
   * The CTE `item`, writing a row for each copy whose message is in the CTE `messages` (columns id,
   * conversation_id, sender_user_id, sender_device_id): copies of messages not stored are not written. `now` is the
   * placeholder of the statement's timestamp, `first` the number of the first of params()'s placeholders. It
   * returns the rows' id, user_id, device_id, message_id and conversation_id.
   */
  cte(messages: string, now: string, first: number): string {
    const $ = (i: number) => `$${first + i}`;
    return `item AS (
  INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, sender_user_id, sender_device_id,
                           ciphertext_type, body, payload, created_at, expires_at)
  SELECT k.user_id, k.device_id, 'envelope', k.message_id, msg.conversation_id, msg.sender_user_id,
         msg.sender_device_id, k.ciphertext_type, decode(k.body, 'base64'),
         CASE WHEN k.self_destruct THEN jsonb_build_object('selfDestruct', true) END, ${now}, k.expires_at
  FROM unnest(${$(0)}::uuid[], ${$(1)}::int[], ${$(2)}::uuid[], ${$(3)}::int[], ${$(4)}::text[], ${$(5)}::bool[],
              ${$(6)}::timestamptz[])
    WITH ORDINALITY AS k(user_id, device_id, message_id, ciphertext_type, body, self_destruct, expires_at, n)
  JOIN ${messages} msg ON msg.id = k.message_id
  ORDER BY k.n
  RETURNING id, user_id, device_id, message_id, conversation_id
)`;
  },
};
