// The inbox's tables: the only code that reads or writes inbox_items (SQL and Prisma).
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { base64, bytes } from "../bytes.ts";
import type { InboxItem } from "../generated/prisma/client.ts";
import type { AckedItem, EnvelopeCopy, NewInboxItem } from "./events.ts";

export type InboxStore = ReturnType<typeof createInboxStore>;

/** A row of the `item` CTE of EnvelopeWrite, as the statement that ran it returns it. */
export interface WrittenEnvelope {
  id: string;
  userId: string;
  deviceId: number;
  messageId: string;
  conversationId: string;
}

export function createInboxStore({ prisma }: Pick<ServiceDeps, "prisma">) {
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

  /** Removes the device's own items with these ids (of any kind); returns what was removed. */
  async function removeOwn(tx: Tx, actor: Actor, ids: bigint[]): Promise<AckedItem[]> {
    return tx.$queryRaw<AckedItem[]>`
      DELETE FROM inbox_items WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId}
        AND id = ANY(${ids.map(String)}::bigint[])
      RETURNING id, kind, message_id::text AS "messageId"`;
  }

  /** Drops the undelivered copies of a message (deleted for everyone). */
  async function removeEnvelopesOf(tx: Tx, messageId: string): Promise<void> {
    await tx.inboxItem.deleteMany({ where: { messageId, kind: "envelope" } });
  }

  /** Drops the queues of the user's deactivated devices: nobody can acknowledge them any more. */
  async function removeQueuesOfInactiveDevices(tx: Tx, userId: string): Promise<void> {
    await tx.$executeRaw`
      DELETE FROM inbox_items i USING devices d
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

  return { insert, read, removeOwn, removeEnvelopesOf, removeQueuesOfInactiveDevices, sweep, depth };
}

/**
 * Envelope queue rows written inside the statement that stores their messages: one round trip for a batch of sends
 * (the hot path). The inbox owns the SQL; the messages store places it in its statement.
 */
export const envelopeWrite = {
  /** Parameters the CTE takes, in order (see cte). */
  params(copies: EnvelopeCopy[]): unknown[] {
    return [
      copies.map((c) => c.userId),
      copies.map((c) => c.deviceId),
      copies.map((c) => c.messageId),
      copies.map((c) => c.ciphertextType),
      copies.map((c) => base64(c.body)),
      copies.map((c) => (c.selfDestruct ? JSON.stringify({ selfDestruct: true }) : null)),
      copies.map((c) => c.expiresAt.toISOString()),
    ];
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
         msg.sender_device_id, k.ciphertext_type, decode(k.body, 'base64'), k.payload::jsonb, ${now}, k.expires_at
  FROM unnest(${$(0)}::uuid[], ${$(1)}::int[], ${$(2)}::uuid[], ${$(3)}::int[], ${$(4)}::text[], ${$(5)}::text[],
              ${$(6)}::timestamptz[])
    WITH ORDINALITY AS k(user_id, device_id, message_id, ciphertext_type, body, payload, expires_at, n)
  JOIN ${messages} msg ON msg.id = k.message_id
  ORDER BY k.n
  RETURNING id, user_id, device_id, message_id, conversation_id
)`;
  },
};
