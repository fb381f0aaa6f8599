// The messages domain's tables: the only code that reads or writes conversations, messages and hidden_messages
// (SQL and Prisma). It places the inbox's envelope rows (InboxQueue["envelopes"]) in the statement that stores a
// batch. Two statements join the accounts domain's devices (DEVICES_TABLE): the read a batch of sends is checked
// against (one round trip on the hot path), and the devices of a user's contacts (one snapshot of both tables).
import { randomUUID } from "node:crypto";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { Prisma } from "../generated/prisma/client.ts";
import type { AckFollowUp, InboxQueue, WrittenEnvelope } from "../inbox/service.ts";
import type { ActiveDevice, ConversationInfo, MessageInfo, Page, SendResult } from "./rules.ts";
import { cursorSeq, parseConversationCursor } from "./rules.ts";
import { canonicalUuid } from "../ids.ts";
import { acceptedSql, blockedPairsSql } from "../consent/store.ts";
import { DEVICES_TABLE } from "../accounts/store.ts";
import { plainArray } from "../db/arrays.ts";
import { unsizedArray } from "../db/plans.ts";

export type MessagesStore = ReturnType<typeof createMessagesStore>;

/** A message row of a batch of sends, with the envelope rows it queues. */
export interface NewMessage {
  id: string;
  conversation: [string, string];
  senderUserId: string;
  senderDeviceId: number;
  recipientUserId: string;
  clientMessageId: string;
  messageType: string;
  expiresAt: Date | null;
  /** sendDigest of the request (compared when the same clientMessageId comes again). */
  digest: Uint8Array;
}

/** A message whose status changed, to tell its sender's devices. */
export interface ChangedMessage {
  id: string;
  conversationId: string;
  senderUserId: string;
  expiresAt: Date | null;
}

type SentKey = { userId: string; deviceId: number; clientMessageId: string };
/** A send already stored under a client message id: its answer, and what it asked for (null before 0005). */
export type StoredSend = SendResult & { digest: Uint8Array | null };
export const sentKey = (k: SentKey) => `${k.userId}|${k.deviceId}|${k.clientMessageId}`;

/**
 * What a batch of sends is checked against, in one statement ($1 user ids; $2-$4 sender, device and client message
 * id of each send; $5-$6 sender and recipient of each send): the active devices of those users, the sends already
 * stored, and the pairs whose recipient blocked the sender (the consent domain's SQL). A stored send is looked up per
 * key through LATERAL ... LIMIT 1, which PostgreSQL cannot flatten into a join: as a join, the generic plan a named
 * statement keeps (made while the table was still small) hashed a sequential scan of messages, on every batch, for as
 * long as the plan lived (~0.5 ms a batch at 1,000 sends/s on a new database). Its arrays are unsized (see
 * src/db/plans.ts), so that plan is made once and kept rather than planned again for every batch.
 */
export const READ_FOR_SENDS = `
SELECT 'device' AS row_kind, user_id::text AS user_id, device_id, registration_id, NULL::text AS message_id,
       NULL::float8 AS created_ms, NULL::text AS client_message_id, NULL::text AS digest, NULL::text AS blocked_pair
FROM ${DEVICES_TABLE} WHERE user_id = ANY(${unsizedArray("$1::uuid[]")}::uuid[]) AND active
UNION ALL
SELECT 'message', m.sender_user_id::text, m.sender_device_id, NULL, m.id::text,
       extract(epoch FROM m.created_at)::float8 * 1000, m.client_message_id, encode(m.send_digest, 'hex'), NULL
FROM unnest(${unsizedArray("$2::uuid[]")}, ${unsizedArray("$3::int[]")}, ${unsizedArray("$4::text[]")}) AS k(user_id, device_id, client_message_id)
CROSS JOIN LATERAL (
  SELECT * FROM messages m
  WHERE m.sender_user_id = k.user_id AND m.sender_device_id = k.device_id AND m.client_message_id = k.client_message_id
  LIMIT 1) m
UNION ALL
SELECT 'blocked', NULL, NULL, NULL, NULL, NULL, NULL, NULL, b.pair
FROM (${blockedPairsSql(unsizedArray("$5::uuid[]"), unsizedArray("$6::uuid[]"))}) b`;

/**
 * Conversations as the API shows them. A conversation's activity time (lastMessageAt) is its latest message's, by
 * seq as its messages are listed, found through the (conversation_id, seq) index, so no send has to move the pair's
 * row. The row's own last_message_at is the floor: its creation time, raised when stored messages are removed
 * (KEPT_ACTIVITY), so a conversation does not fall back in the list when its latest message expires or is purged.
 */
const CONVERSATION_ROWS = Prisma.sql`
  SELECT c.id::text AS id, c.user_a::text AS "userA", c.user_b::text AS "userB", c.created_at AS "createdAt",
         GREATEST(c.last_message_at, (SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id
                                      ORDER BY m.seq DESC LIMIT 1)) AS "lastMessageAt"
  FROM conversations c`;

/**
 * The CTEs that follow a CTE `gone` of removed messages (conversation_id, created_at): each conversation's
 * last_message_at rises to its newest removed message's time, the rows locked in id order (two nodes' sweeps meet).
 */
const KEPT_ACTIVITY = `
  newest AS (SELECT conversation_id AS id, max(created_at) AS at FROM gone GROUP BY conversation_id),
  raised AS (
    SELECT c.id, n.at FROM conversations c JOIN newest n ON c.id = n.id
    WHERE c.last_message_at < n.at ORDER BY c.id FOR NO KEY UPDATE OF c),
  kept AS (UPDATE conversations c SET last_message_at = r.at FROM raised r WHERE c.id = r.id RETURNING 1)`;

export function createMessagesStore(deps: Pick<ServiceDeps, "prisma" | "sql">, envelopes: InboxQueue["envelopes"]) {
  const { prisma, sql } = deps;
  const writeSends = writeSendsStatement(envelopes);

  /**
   * What a batch of sends is checked against, in one round trip (READ_FOR_SENDS): the active devices of these users,
   * the sends among `sent` already stored (a retried call gets the first call's answer and stores nothing), and the
   * pairs among `pairs` whose recipient blocked the sender, as "from|to".
   */
  async function readForSends(userIds: string[], sent: SentKey[], pairs: { from: string; to: string }[] = []) {
    const rows = await sql<{
      row_kind: "device" | "message" | "blocked";
      user_id: string;
      device_id: number;
      registration_id: number | null;
      message_id: string | null;
      created_ms: number | null;
      client_message_id: string | null;
      digest: string | null;
      blocked_pair: string | null;
    }>(READ_FOR_SENDS, [
      plainArray([...new Set(userIds)]),
      plainArray(sent.map((s) => s.userId)),
      plainArray(sent.map((s) => s.deviceId)),
      // Client message ids are the sender's own text: pg quotes them.
      sent.map((s) => s.clientMessageId),
      plainArray(pairs.map((p) => p.from)),
      plainArray(pairs.map((p) => p.to)),
    ]);
    const devices = new Map<string, ActiveDevice[]>();
    const stored = new Map<string, StoredSend>();
    const blocked = new Set<string>();
    for (const r of rows) {
      if (r.row_kind === "blocked") {
        blocked.add(r.blocked_pair!);
      } else if (r.row_kind === "message") {
        const key = sentKey({ userId: r.user_id, deviceId: r.device_id, clientMessageId: r.client_message_id! });
        const digest = r.digest ? Buffer.from(r.digest, "hex") : null;
        stored.set(key, { messageId: r.message_id!, serverTimestamp: new Date(Math.round(Number(r.created_ms))), digest });
      } else {
        const device = { userId: r.user_id, deviceId: r.device_id, registrationId: r.registration_id! };
        devices.set(r.user_id, [...(devices.get(r.user_id) ?? []), device]);
      }
    }
    return { devices, stored, blocked };
  }

  /**
   * Stores accepted sends in one statement (atomic on its own, one round trip): the pairs' conversations, the
   * message rows and the recipients' queue rows. A send whose client message id is already stored (a concurrent
   * copy of the same call won) stores nothing. Returns each stored message's conversation and the queue rows written.
   */
  async function storeSends(
    messages: NewMessage[],
    copies: Parameters<InboxQueue["envelopes"]["params"]>[0],
    now: Date,
  ): Promise<{ conversationOf: Map<string, string>; written: WrittenEnvelope[] }> {
    const pairs = new Map<string, [string, string]>();
    for (const m of messages) pairs.set(`${m.conversation[0]}|${m.conversation[1]}`, m.conversation);
    // Sorted, so two statements upserting overlapping conversations lock their rows in the same order.
    const list = [...pairs.values()].sort((x, y) => (x[0] + x[1] < y[0] + y[1] ? -1 : 1));
    const rows = await sql<{
      row_kind: "message" | "item";
      id: string;
      message_id: string;
      conversation_id: string | null;
      user_id: string | null;
      device_id: number | null;
    }>(writeSends, [
      now.toISOString(),
      plainArray(list.map(() => randomUUID())),
      plainArray(list.map((p) => p[0])),
      plainArray(list.map((p) => p[1])),
      plainArray(messages.map((m) => m.id)),
      plainArray(messages.map((m) => m.conversation[0])),
      plainArray(messages.map((m) => m.conversation[1])),
      plainArray(messages.map((m) => m.senderUserId)),
      plainArray(messages.map((m) => m.senderDeviceId)),
      plainArray(messages.map((m) => m.recipientUserId)),
      messages.map((m) => m.clientMessageId),
      plainArray(messages.map((m) => m.messageType)),
      plainArray(messages.map((m) => m.expiresAt?.toISOString() ?? null)),
      plainArray(messages.map((m) => Buffer.from(m.digest).toString("hex"))),
      ...envelopes.params(copies),
    ]);
    const conversationOf = new Map<string, string>();
    const written: WrittenEnvelope[] = [];
    for (const r of rows) {
      if (r.row_kind === "message") conversationOf.set(r.message_id, r.conversation_id!);
      else {
        written.push({ id: r.id, messageId: r.message_id, conversationId: r.conversation_id!, userId: r.user_id!, deviceId: r.device_id! });
      }
    }
    return { conversationOf, written };
  }

  /** Read (and so delivered): the visible ones among these messages addressed to `reader`. */
  async function markRead(tx: Tx, reader: string, ids: string[], at: Date): Promise<ChangedMessage[]> {
    // In conversation order: a coalesced receipt lists its messages as they were sent.
    return tx.$queryRaw<ChangedMessage[]>`
      WITH r AS (
        UPDATE messages SET read_at = ${at}, delivered_at = COALESCE(delivered_at, ${at})
        WHERE id = ANY(${ids}::uuid[]) AND recipient_user_id = ${reader}::uuid AND read_at IS NULL
          AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ${at})
          AND ${Prisma.raw(acceptedSql("recipient_user_id", "sender_user_id"))}
        RETURNING id, seq, conversation_id, sender_user_id, expires_at
      )
      SELECT id::text, conversation_id::text AS "conversationId", sender_user_id::text AS "senderUserId",
             expires_at AS "expiresAt"
      FROM r ORDER BY seq`;
  }

  const visible = (now: Date): Prisma.MessageWhereInput => ({
    deletedAt: null,
    OR: [{ expiresAt: null }, { expiresAt: { gt: now } }],
  });

  /** A message the actor sent or received, still visible and not hidden by them. */
  async function findVisible(actor: Actor, messageId: string, now: Date) {
    return prisma.message.findFirst({
      where: {
        id: messageId,
        ...visible(now),
        OR: [{ senderUserId: actor.userId }, { recipientUserId: actor.userId }],
        hidden: { none: { userId: actor.userId } },
      },
    });
  }

  async function hide(messageId: string, userId: string): Promise<void> {
    await prisma.hiddenMessage.createMany({ data: [{ messageId, userId }], skipDuplicates: true });
  }

  /** Marks a message deleted for everyone; false when it already was. */
  async function markDeleted(tx: Tx, messageId: string, now: Date): Promise<boolean> {
    const done = await tx.message.updateMany({ where: { id: messageId, deletedAt: null }, data: { deletedAt: now } });
    return done.count > 0;
  }

  /** The active devices of `userId` and of everyone who shares a conversation with it. */
  async function devicesOfContacts(tx: Tx, userId: string, alsoUserIds: string[] = []) {
    return tx.$queryRaw<{ userId: string; deviceId: number }[]>`
      SELECT d.user_id::text AS "userId", d.device_id AS "deviceId" FROM ${Prisma.raw(DEVICES_TABLE)} d
      WHERE d.active AND (d.user_id = ${userId}::uuid OR d.user_id = ANY(${alsoUserIds}::uuid[]) OR d.user_id IN (
        SELECT CASE WHEN c.user_a = ${userId}::uuid THEN c.user_b ELSE c.user_a END FROM conversations c
        WHERE c.user_a = ${userId}::uuid OR c.user_b = ${userId}::uuid))`;
  }

  async function conversationOf(userId: string, conversationId: string): Promise<ConversationInfo | null> {
    const id = canonicalUuid(conversationId);
    if (!id) return null;
    const [c] = await prisma.$queryRaw<ConversationInfo[]>`
      ${CONVERSATION_ROWS} WHERE c.id = ${id}::uuid AND (c.user_a = ${userId}::uuid OR c.user_b = ${userId}::uuid)`;
    return c ?? null;
  }

  /** The users among `ids` who share a conversation with `userId`. */
  async function contactsAmong(userId: string, ids: string[]): Promise<string[]> {
    const rows = await prisma.conversation.findMany({
      where: {
        OR: [
          { userA: userId, userB: { in: ids } },
          { userB: userId, userA: { in: ids } },
        ],
      },
      select: { userA: true, userB: true },
    });
    return rows.map((r) => (r.userA === userId ? r.userB : r.userA));
  }

  /** The user's conversations, most recently active first, after/before the page's cursors. */
  async function conversations(userId: string, page: Page): Promise<ConversationInfo[]> {
    const after = page.after ? parseConversationCursor(page.after) : null;
    const before = page.before ? parseConversationCursor(page.before) : null;
    const dir = Prisma.raw(page.inverted ? "ASC" : "DESC");
    return prisma.$queryRaw<ConversationInfo[]>`
      SELECT * FROM (${CONVERSATION_ROWS} WHERE c.user_a = ${userId}::uuid OR c.user_b = ${userId}::uuid) c
      WHERE TRUE
        ${after ? Prisma.sql`AND ("lastMessageAt", id::uuid) < (${after.at}::timestamptz, ${after.id}::uuid)` : Prisma.empty}
        ${before ? Prisma.sql`AND ("lastMessageAt", id::uuid) > (${before.at}::timestamptz, ${before.id}::uuid)` : Prisma.empty}
      ORDER BY "lastMessageAt" ${dir}, id::uuid ${dir}
      LIMIT ${page.limit}`;
  }

  /** A conversation's messages the reader may see, newest first. */
  async function messages(reader: string, conversationId: string, page: Page, now: Date): Promise<MessageInfo[]> {
    return prisma.message.findMany({
      where: {
        conversationId,
        ...visible(now),
        hidden: { none: { userId: reader } },
        seq: {
          ...(page.after ? { lt: cursorSeq(page.after) } : {}),
          ...(page.before ? { gt: cursorSeq(page.before) } : {}),
        },
      },
      orderBy: { seq: page.inverted ? "asc" : "desc" },
      take: page.limit,
    });
  }

  /** Deletes self-destructed messages (their queue items go with the inbox sweep). */
  async function sweep(now: Date): Promise<number> {
    const [row] = await sql<{ n: number }>(
      `WITH gone AS (DELETE FROM messages WHERE expires_at <= $1::timestamptz RETURNING conversation_id, created_at),
       ${KEPT_ACTIVITY}
       SELECT count(*)::int AS n FROM gone`,
      [now],
    );
    return row.n;
  }

  /**
   * Metadata retention: at most `limit` message rows none of whose copies is queued any more, created before
   * `cutoff.created` and with no status change (delivered, read, deleted) since `cutoff.changed`; their hidden marks
   * go with them. SKIP LOCKED: a row an acknowledgement holds waits for the next run, and nodes purging at once take
   * different rows.
   */
  async function purge(cutoff: { created: Date; changed: Date }, now: Date, limit: number): Promise<number> {
    const [row] = await sql<{ n: number }>(
      `WITH doomed AS (
         SELECT m.id FROM messages m
         WHERE m.created_at < $1::timestamptz
           AND GREATEST(m.created_at, m.delivered_at, m.read_at, m.deleted_at) < $2::timestamptz
           AND NOT ${envelopes.queued("m.id", "$3::timestamptz")}
         ORDER BY m.created_at LIMIT $4 FOR UPDATE OF m SKIP LOCKED
       ), gone AS (DELETE FROM messages m USING doomed WHERE m.id = doomed.id RETURNING m.conversation_id, m.created_at),
       ${KEPT_ACTIVITY}
       SELECT count(*)::int AS n FROM gone`,
      [cutoff.created, cutoff.changed, now, limit],
    );
    return row.n;
  }

  return {
    purge,
    readForSends,
    storeSends,
    markRead,
    findVisible,
    hide,
    markDeleted,
    devicesOfContacts,
    conversationOf,
    contactsAmong,
    conversations,
    messages,
    sweep,
  };
}

/**
 * The messages part of every acknowledgement statement (AckFollowUp): an envelope acknowledged by a device of its
 * recipient marks the message delivered, once (rows locked in id order), and the inbox's receipt rows follow.
 * Sync copies (acknowledged by the sender's own devices) mark nothing.
 */
export function deliveredOnAck(receipts: InboxQueue["receipts"]): AckFollowUp {
  return {
    ctes: `
seen AS (
  SELECT m.id FROM messages m
  JOIN (SELECT DISTINCT message_id, user_id FROM acked WHERE kind = 'envelope') a
    ON m.id = a.message_id AND m.recipient_user_id = a.user_id
  WHERE m.delivered_at IS NULL AND ${acceptedSql("m.recipient_user_id", "m.sender_user_id")}
  ORDER BY m.id FOR UPDATE OF m
), delivered AS (
  UPDATE messages m SET delivered_at = $1::timestamptz FROM seen WHERE m.id = seen.id
  RETURNING m.id, m.seq, m.conversation_id, m.sender_user_id, m.recipient_user_id, m.expires_at
), ${receipts.cte("delivered", "DELIVERED")}`,
  };
}

// The write of a batch of sends, in one statement. A pair's conversation row is only read (its id, and the messages'
// foreign key takes a KEY SHARE lock, which nothing on the hot path waits for): its activity time is its latest
// message's (CONVERSATION_ROWS), so sends do not queue on the rows of busy pairs. Only pairs without a row yet are
// inserted, in the order given (sorted by the caller); when a concurrent batch inserted the same pair first, ON
// CONFLICT waits for it and returns its row unchanged (DO NOTHING would return none), so no message loses its
// conversation. Queue rows are written (by the inbox's CTE) only for the messages stored.
export function writeSendsStatement(envelopes: InboxQueue["envelopes"]): string {
  return `
WITH pair AS (
  SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[]) WITH ORDINALITY AS p(id, user_a, user_b, n)
), known AS (
  SELECT c.id, c.user_a, c.user_b FROM conversations c JOIN pair p ON c.user_a = p.user_a AND c.user_b = p.user_b
), created AS (
  INSERT INTO conversations AS c (id, user_a, user_b, created_at, last_message_at)
  SELECT p.id, p.user_a, p.user_b, $1::timestamptz, $1::timestamptz FROM pair p
  WHERE NOT EXISTS (SELECT 1 FROM known WHERE known.user_a = p.user_a AND known.user_b = p.user_b)
  ORDER BY p.n
  ON CONFLICT (user_a, user_b) DO UPDATE SET last_message_at = c.last_message_at
  RETURNING c.id, c.user_a, c.user_b
), conv AS (
  SELECT * FROM known UNION ALL SELECT * FROM created
), msg AS (
  INSERT INTO messages (id, conversation_id, sender_user_id, sender_device_id, recipient_user_id, client_message_id,
                        message_type, created_at, expires_at, send_digest)
  SELECT k.id, conv.id, k.sender_user_id, k.sender_device_id, k.recipient_user_id, k.client_message_id,
         k.message_type, $1::timestamptz, k.expires_at, decode(k.digest, 'hex')
  FROM unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[], $9::int[], $10::uuid[], $11::text[], $12::text[],
              $13::timestamptz[], $14::text[])
    WITH ORDINALITY AS k(id, user_a, user_b, sender_user_id, sender_device_id, recipient_user_id, client_message_id,
                         message_type, expires_at, digest, n)
  JOIN conv ON conv.user_a = k.user_a AND conv.user_b = k.user_b
  ORDER BY k.n
  ON CONFLICT (sender_user_id, sender_device_id, client_message_id) DO NOTHING
  RETURNING id, conversation_id, sender_user_id, sender_device_id
), ${envelopes.cte("msg", "$1::timestamptz", 15)}
SELECT 'message' AS row_kind, id::text AS id, id::text AS message_id, conversation_id::text AS conversation_id,
       NULL::text AS user_id, NULL::int AS device_id FROM msg
UNION ALL
SELECT 'item', id::text, message_id::text, conversation_id::text, user_id::text, device_id FROM item`;
}
