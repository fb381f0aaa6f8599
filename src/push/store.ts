// The only code touching push_registrations and push_pending. Plain statements, each atomic on its own: a pending
// row is claimed with FOR UPDATE SKIP LOCKED and a lease in one statement, so two nodes never take the same row.
import type { Actor } from "../deps.ts";
import type { Sql } from "../db/database.ts";
import type { Registration, Wake } from "./rules.ts";

/** A claimed wake-up with what is needed to send it. */
export interface Claimed {
  userId: string;
  deviceId: number;
  urgent: boolean;
  attempts: number;
  lease: Date;
  kind: "WEB_PUSH" | "GATEWAY";
  endpoint: string | null;
  p256dh: string | null;
  auth: string | null;
  gateway: string | null;
  token: string | null;
  windowStartedAt: Date | null;
  windowCount: number;
}

const iso = (d: Date) => d.toISOString();

export type PushStore = ReturnType<typeof createPushStore>;

export function createPushStore(sql: Sql) {
  /** One registration per device: a new one replaces the old (and keeps nothing pending for the old address). */
  async function register(actor: Actor, r: Registration): Promise<void> {
    const web = r.kind === "WEB_PUSH";
    await sql(
      `INSERT INTO push_registrations (user_id, device_id, kind, endpoint, p256dh, auth, gateway, token)
       VALUES ($1::uuid, $2, $3, $4, decode($5, 'base64'), decode($6, 'base64'), $7, $8)
       ON CONFLICT (user_id, device_id) DO UPDATE SET kind = EXCLUDED.kind, endpoint = EXCLUDED.endpoint,
         p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, gateway = EXCLUDED.gateway, token = EXCLUDED.token,
         woken_at = NULL, created_at = now()`,
      [
        actor.userId,
        actor.deviceId,
        r.kind,
        web ? r.endpoint : null,
        web ? r.p256dh.toString("base64") : null,
        web ? r.auth.toString("base64") : null,
        web ? null : r.gateway,
        web ? null : r.token,
      ],
    );
  }

  async function unregister(userId: string, deviceId: number): Promise<boolean> {
    const rows = await sql<{ n: number }>(
      `DELETE FROM push_registrations WHERE user_id = $1::uuid AND device_id = $2 RETURNING 1 AS n`,
      [userId, deviceId],
    );
    return rows.length > 0;
  }

  /** The push service said the address is gone: removed, unless the device registered a new one meanwhile. */
  async function unregisterIfUnchanged(row: Claimed): Promise<void> {
    await sql(
      `DELETE FROM push_registrations WHERE user_id = $1::uuid AND device_id = $2
         AND endpoint IS NOT DISTINCT FROM $3 AND token IS NOT DISTINCT FROM $4`,
      [row.userId, row.deviceId, row.endpoint, row.token],
    );
  }

  /**
   * Of these devices, those with a registration that may be woken now: not pending already, and not woken within
   * the coalescing window (an urgent wake ignores the window). Read before presence is asked, so devices without a
   * registration, or woken already, cost no presence lookup.
   */
  async function wakeable(wakes: Wake[], now: Date, coalesceSeconds: number): Promise<Wake[]> {
    if (wakes.length === 0) return [];
    return sql<Wake>(
      `SELECT r.user_id::text AS "userId", r.device_id AS "deviceId", k.urgent
       FROM unnest($1::uuid[], $2::int[], $3::bool[]) AS k(u, d, urgent)
       JOIN push_registrations r ON r.user_id = k.u AND r.device_id = k.d
       WHERE (k.urgent OR r.woken_at IS NULL OR r.woken_at <= $4::timestamptz - make_interval(secs => $5))
         AND NOT EXISTS (SELECT 1 FROM push_pending p WHERE p.user_id = k.u AND p.device_id = k.d AND p.urgent >= k.urgent)`,
      [wakes.map((w) => w.userId), wakes.map((w) => w.deviceId), wakes.map((w) => w.urgent), iso(now), coalesceSeconds],
    );
  }

  /**
   * A pending row for each registered device among `wakes` (the same window rule as wakeable, checked again in the
   * statement); a device already pending folds in. Returns how many rows were added or changed.
   */
  async function markPending(wakes: Wake[], now: Date, coalesceSeconds: number): Promise<number> {
    if (wakes.length === 0) return 0;
    const rows = await sql<{ n: number }>(
      `INSERT INTO push_pending (user_id, device_id, urgent, due_at)
       SELECT r.user_id, r.device_id, k.urgent, $4::timestamptz
       FROM unnest($1::uuid[], $2::int[], $3::bool[]) AS k(u, d, urgent)
       JOIN push_registrations r ON r.user_id = k.u AND r.device_id = k.d
       WHERE k.urgent OR r.woken_at IS NULL OR r.woken_at <= $4::timestamptz - make_interval(secs => $5)
       ON CONFLICT (user_id, device_id) DO UPDATE SET urgent = push_pending.urgent OR EXCLUDED.urgent
       RETURNING 1 AS n`,
      [wakes.map((w) => w.userId), wakes.map((w) => w.deviceId), wakes.map((w) => w.urgent), iso(now), coalesceSeconds],
    );
    return rows.length;
  }

  /** The device is connected: it reads its queue itself, and the next time it goes away it may be woken again. */
  async function connected(actor: Actor): Promise<void> {
    await sql(
      `WITH d AS (DELETE FROM push_pending WHERE user_id = $1::uuid AND device_id = $2)
       UPDATE push_registrations SET woken_at = NULL WHERE user_id = $1::uuid AND device_id = $2 AND woken_at IS NOT NULL`,
      [actor.userId, actor.deviceId],
    );
  }

  /** Takes up to `limit` due wake-ups no other node holds, leasing them until `lease`. */
  async function claim(now: Date, lease: Date, limit: number): Promise<Claimed[]> {
    const rows = await sql<Omit<Claimed, "lease" | "windowStartedAt"> & { windowStartedAt: string | null }>(
      `WITH c AS (
         SELECT user_id, device_id FROM push_pending
         WHERE due_at <= $1::timestamptz AND (lease_until IS NULL OR lease_until <= $1::timestamptz)
         ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED
       ), u AS (
         UPDATE push_pending p SET lease_until = $2::timestamptz, attempts = p.attempts + 1
         FROM c WHERE p.user_id = c.user_id AND p.device_id = c.device_id
         RETURNING p.user_id, p.device_id, p.urgent, p.attempts
       )
       SELECT u.user_id::text AS "userId", u.device_id AS "deviceId", u.urgent, u.attempts, r.kind, r.endpoint,
         encode(r.p256dh, 'base64') AS p256dh, encode(r.auth, 'base64') AS auth, r.gateway, r.token,
         r.window_started_at::text AS "windowStartedAt", r.window_count AS "windowCount"
       FROM u JOIN push_registrations r ON r.user_id = u.user_id AND r.device_id = u.device_id`,
      [iso(now), iso(lease), limit],
    );
    return rows.map((r) => ({
      ...r,
      lease,
      windowStartedAt: r.windowStartedAt ? new Date(r.windowStartedAt) : null,
    }));
  }

  /** Accepted by the push service: the pending row goes (if this node still holds it) and the device counts as woken. */
  async function sent(rows: Claimed[], now: Date, windows: { startedAt: Date | null; count: number }[]): Promise<void> {
    if (rows.length === 0) return;
    await sql(
      `WITH k AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $5::int[]) AS k(u, d, ws, wc)),
       del AS (DELETE FROM push_pending p USING k WHERE p.user_id = k.u AND p.device_id = k.d AND p.lease_until = $4::timestamptz)
       UPDATE push_registrations r SET woken_at = $6::timestamptz, window_started_at = k.ws, window_count = k.wc
       FROM k WHERE r.user_id = k.u AND r.device_id = k.d`,
      [
        rows.map((r) => r.userId),
        rows.map((r) => r.deviceId),
        windows.map((w) => (w.startedAt ? iso(w.startedAt) : null)),
        iso(rows[0].lease),
        windows.map((w) => w.count),
        iso(now),
      ],
    );
  }

  /** Not sent now: due again at `dueAt`. `countAttempt` false when the push was held back, not tried (rate limit). */
  async function reschedule(row: Claimed, dueAt: Date, countAttempt: boolean): Promise<void> {
    await sql(
      `UPDATE push_pending SET due_at = $3::timestamptz, lease_until = NULL, attempts = attempts - $5
       WHERE user_id = $1::uuid AND device_id = $2 AND lease_until = $4::timestamptz`,
      [row.userId, row.deviceId, iso(dueAt), iso(row.lease), countAttempt ? 0 : 1],
    );
  }

  /** Given up on (attempts used up, or the push service refused it for good). */
  async function drop(row: Claimed): Promise<void> {
    await sql(`DELETE FROM push_pending WHERE user_id = $1::uuid AND device_id = $2 AND lease_until = $3::timestamptz`, [
      row.userId,
      row.deviceId,
      iso(row.lease),
    ]);
  }

  /** Registered devices and wake-ups waiting to be sent, for the metrics. */
  async function counts(): Promise<{ registrations: number; pending: number }> {
    const [row] = await sql<{ registrations: number; pending: number }>(
      `SELECT (SELECT count(*)::int FROM push_registrations) AS registrations,
              (SELECT count(*)::int FROM push_pending) AS pending`,
      [],
    );
    return row;
  }

  return { register, unregister, unregisterIfUnchanged, wakeable, markPending, connected, claim, sent, reschedule, drop, counts };
}
