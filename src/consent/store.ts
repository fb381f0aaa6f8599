// The consent domain's tables: the only code that reads or writes consent_contacts, consent_blocks, consent_reports
// and consent_settings. `acceptedSql` and `blockedPairsSql` are the pieces other statements embed (as the inbox's CTEs
// are embedded in the messages domain's statements): SQL on this domain's tables, written here.
import { randomUUID } from "node:crypto";
import type { ServiceDeps } from "../deps.ts";
import { MAX_REQUESTS, type PresenceVisibility, type Relation } from "./rules.ts";

/** SQL condition: `recipient` accepted `sender` (or they are the same user), for statements that mark receipts. */
export const acceptedSql = (recipient: string, sender: string) =>
  `(${recipient} = ${sender} OR EXISTS (SELECT 1 FROM consent_contacts cc WHERE cc.user_id = ${recipient} AND cc.contact_user_id = ${sender}))`;

/**
 * SQL rows, one `pair` ("sender|recipient") for each pair among the parallel arrays `senders` and `recipients` whose
 * recipient blocked the sender; a user writing to themself is never blocked. Each pair probes the key (LATERAL ...
 * LIMIT 1 is not flattened into a join, whose generic plan on a new database scans the table).
 */
export const blockedPairsSql = (senders: string, recipients: string) =>
  `SELECT DISTINCT p.sender::text || '|' || p.recipient::text AS pair
   FROM unnest(${senders}, ${recipients}) AS p(sender, recipient)
   CROSS JOIN LATERAL (SELECT 1 FROM consent_blocks b
                       WHERE b.blocker_user_id = p.recipient AND b.blocked_user_id = p.sender LIMIT 1) b
   WHERE p.sender <> p.recipient`;

export interface MessageRequest {
  userId: string;
  since: Date;
}

export interface NewReport {
  reporterUserId: string;
  reporterDeviceId: number;
  messageId: string;
  conversationId: string | null;
  senderUserId: string | null;
  reason: string | null;
  excerpt: string | null;
}

export type ConsentStore = ReturnType<typeof createConsentStore>;

export function createConsentStore(deps: Pick<ServiceDeps, "sql">) {
  const { sql } = deps;

  /** Records that each `from` wrote to (and so accepted) its `to`; a `to` that is no user is skipped (the send fails). */
  async function addContacts(pairs: { from: string; to: string }[]): Promise<void> {
    if (pairs.length === 0) return;
    await sql(
      `INSERT INTO consent_contacts (user_id, contact_user_id)
       SELECT p.f, p.t FROM unnest($1::uuid[], $2::uuid[]) AS p(f, t) JOIN users u ON u.id = p.t
       ON CONFLICT DO NOTHING`,
      [pairs.map((p) => p.from), pairs.map((p) => p.to)],
    );
  }

  /** The pairs among these whose `to` blocked its `from`, as "from|to". */
  async function blockedPairs(pairs: { from: string; to: string }[]): Promise<Set<string>> {
    if (pairs.length === 0) return new Set();
    const rows = await sql<{ pair: string }>(blockedPairsSql("$1::uuid[]", "$2::uuid[]"), [
      pairs.map((p) => p.from),
      pairs.map((p) => p.to),
    ]);
    return new Set(rows.map((r) => r.pair));
  }

  async function block(blocker: string, blocked: string): Promise<void> {
    await sql(`INSERT INTO consent_blocks (blocker_user_id, blocked_user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [blocker, blocked]);
  }

  async function unblock(blocker: string, blocked: string): Promise<void> {
    await sql(`DELETE FROM consent_blocks WHERE blocker_user_id = $1 AND blocked_user_id = $2`, [blocker, blocked]);
  }

  /** The users `userId` blocked, and those who blocked it. */
  async function blockedEitherWay(userId: string): Promise<Set<string>> {
    const rows = await sql<{ u: string }>(
      `SELECT blocked_user_id::text AS u FROM consent_blocks WHERE blocker_user_id = $1
       UNION SELECT blocker_user_id::text FROM consent_blocks WHERE blocked_user_id = $1`,
      [userId],
    );
    return new Set(rows.map((r) => r.u));
  }

  /** How each target stands towards `viewer`, in one query. */
  async function relations(viewer: string, targets: string[]): Promise<Map<string, Relation>> {
    const rows = await sql<{ target: string; accepted: boolean; blocked: boolean; visibility: PresenceVisibility | null }>(
      `SELECT t.target::text AS target,
         EXISTS (SELECT 1 FROM consent_contacts c WHERE c.user_id = t.target AND c.contact_user_id = $1) AS accepted,
         EXISTS (SELECT 1 FROM consent_blocks b WHERE (b.blocker_user_id = t.target AND b.blocked_user_id = $1)
                                               OR (b.blocker_user_id = $1 AND b.blocked_user_id = t.target)) AS blocked,
         s.presence_visibility AS visibility
       FROM unnest($2::uuid[]) AS t(target) LEFT JOIN consent_settings s ON s.user_id = t.target`,
      [viewer, targets],
    );
    return new Map(rows.map((r) => [r.target, { accepted: r.accepted, blocked: r.blocked, visibility: r.visibility ?? "CONTACTS" }]));
  }

  /** Users who wrote to `userId` and whom it neither accepted nor blocked, oldest first. */
  async function requests(userId: string): Promise<MessageRequest[]> {
    const rows = await sql<{ user_id: string; since: Date }>(
      `SELECT c.user_id::text, c.created_at AS since FROM consent_contacts c
       WHERE c.contact_user_id = $1 AND c.user_id <> $1
         AND NOT EXISTS (SELECT 1 FROM consent_contacts r WHERE r.user_id = $1 AND r.contact_user_id = c.user_id)
         AND NOT EXISTS (SELECT 1 FROM consent_blocks b WHERE b.blocker_user_id = $1 AND b.blocked_user_id = c.user_id)
       ORDER BY c.created_at, c.user_id LIMIT ${MAX_REQUESTS}`,
      [userId],
    );
    return rows.map((r) => ({ userId: r.user_id, since: new Date(r.since) }));
  }

  async function setVisibility(userId: string, visibility: PresenceVisibility): Promise<void> {
    await sql(
      `INSERT INTO consent_settings (user_id, presence_visibility) VALUES ($1, $2)
       ON CONFLICT (user_id) DO UPDATE SET presence_visibility = EXCLUDED.presence_visibility`,
      [userId, visibility],
    );
  }

  async function visibility(userId: string): Promise<PresenceVisibility> {
    const rows = await sql<{ v: PresenceVisibility }>(`SELECT presence_visibility AS v FROM consent_settings WHERE user_id = $1`, [userId]);
    return rows[0]?.v ?? "CONTACTS";
  }

  async function addReport(r: NewReport): Promise<string> {
    const id = randomUUID();
    await sql(
      `INSERT INTO consent_reports (id, reporter_user_id, reporter_device_id, message_id, conversation_id, sender_user_id, reason, excerpt)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [id, r.reporterUserId, r.reporterDeviceId, r.messageId, r.conversationId, r.senderUserId, r.reason, r.excerpt],
    );
    return id;
  }

  return { addContacts, blockedPairs, block, unblock, blockedEitherWay, relations, requests, setVisibility, visibility, addReport };
}
