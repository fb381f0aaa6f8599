// The keys domain's tables: the only code that reads or writes one_time_pre_keys and one_time_kyber_pre_keys (SQL
// and Prisma). The signed and last-resort keys live on the device row, which the accounts domain owns.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { bytes } from "../bytes.ts";
import { DEVICES_TABLE } from "../accounts/store.ts";
import type { PreKey, SignedPreKey } from "./parse.ts";

export type KeysStore = ReturnType<typeof createKeysStore>;

export interface OneTimeKeys {
  oneTimePreKeys?: PreKey[] | null;
  oneTimeKyberPreKeys?: SignedPreKey[] | null;
}

/** One device's row for one claim (n) of the batch. */
export interface ClaimRow {
  n: number;
  device_id: number;
  registration_id: number;
  identity_key: Uint8Array;
  signed_pre_key_id: number | null;
  signed_pre_key: Uint8Array | null;
  signed_pre_key_signature: Uint8Array | null;
  kyber_last_resort_key_id: number | null;
  kyber_last_resort_key: Uint8Array | null;
  kyber_last_resort_signature: Uint8Array | null;
  ec_key_id: number | null;
  ec_public_key: Uint8Array | null;
  ky_key_id: number | null;
  ky_public_key: Uint8Array | null;
  ky_signature: Uint8Array | null;
  ec_left: number;
  ky_left: number;
}

/** The keys a batch takes from one table: as many per device as it has claims, ranked, skipping locked ones. */
const pick = (name: string, table: string) => `${name} AS (
  SELECT k.*, row_number() OVER (PARTITION BY k.user_id, k.device_id ORDER BY k.key_id)::int AS rank
  FROM want w CROSS JOIN LATERAL (
    SELECT user_id, device_id, key_id FROM ${table} o
    WHERE o.user_id = w.user_id AND o.device_id = w.device_id
    ORDER BY key_id LIMIT w.c FOR UPDATE SKIP LOCKED) k),`;

/**
 * Claim n of the batch is ($1[n], $2[n]): a user and one device, or all its active devices when $2[n] is NULL. Each
 * bundle consumes one one-time EC and one one-time Kyber pre-key if any are left. A device that several claims of the
 * batch name gives each its own key: the picks take as many keys as it has claims (`rank` numbers both), so the
 * batch answers exactly as those claims one after another would. One statement is atomic by itself; SKIP LOCKED
 * makes concurrent batches take different keys instead of waiting for each other. The counts are read in the same
 * snapshot, before the deletes, for the low-water hint, and only as far as the hint needs ($3, the low-water mark,
 * past what the batch takes): a count of every key a device has visits each of them, and its heap page until vacuum
 * marks it all-visible. It joins the accounts domain's devices in the same statement (DEVICES_TABLE): the device set
 * and the keys taken must come from one snapshot, in one round trip.
 */
const CLAIM = `
WITH d AS (
  SELECT r.n::int AS n, v.*, row_number() OVER (PARTITION BY v.user_id, v.device_id ORDER BY r.n)::int AS rank
  FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS r(user_id, device_id, n)
  JOIN ${DEVICES_TABLE} v ON v.user_id = r.user_id AND v.active AND (r.device_id IS NULL OR v.device_id = r.device_id)),
want AS (
  SELECT user_id, device_id, count(*) AS c FROM d GROUP BY user_id, device_id),
${pick("ec_pick", "one_time_pre_keys")}
ec AS (
  DELETE FROM one_time_pre_keys o USING ec_pick p
  WHERE o.user_id = p.user_id AND o.device_id = p.device_id AND o.key_id = p.key_id
  RETURNING o.user_id, o.device_id, o.key_id, o.public_key, p.rank),
${pick("ky_pick", "one_time_kyber_pre_keys")}
ky AS (
  DELETE FROM one_time_kyber_pre_keys o USING ky_pick p
  WHERE o.user_id = p.user_id AND o.device_id = p.device_id AND o.key_id = p.key_id
  RETURNING o.user_id, o.device_id, o.key_id, o.public_key, o.signature, p.rank),
left_after AS (
  SELECT w.user_id, w.device_id,
         (SELECT count(*) FROM (SELECT 1 FROM one_time_pre_keys o WHERE o.user_id = w.user_id
            AND o.device_id = w.device_id LIMIT w.c + $3::int) o)::int AS ec_before,
         (SELECT count(*) FROM ec_pick p WHERE p.user_id = w.user_id AND p.device_id = w.device_id)::int AS ec_taken,
         (SELECT count(*) FROM (SELECT 1 FROM one_time_kyber_pre_keys o WHERE o.user_id = w.user_id
            AND o.device_id = w.device_id LIMIT w.c + $3::int) o)::int AS ky_before,
         (SELECT count(*) FROM ky_pick p WHERE p.user_id = w.user_id AND p.device_id = w.device_id)::int AS ky_taken
  FROM want w)
SELECT d.n, d.device_id, d.registration_id, d.identity_key,
       d.signed_pre_key_id, d.signed_pre_key, d.signed_pre_key_signature,
       d.kyber_last_resort_key_id, d.kyber_last_resort_key, d.kyber_last_resort_signature,
       ec.key_id AS ec_key_id, ec.public_key AS ec_public_key,
       ky.key_id AS ky_key_id, ky.public_key AS ky_public_key, ky.signature AS ky_signature,
       l.ec_before - least(d.rank, l.ec_taken) AS ec_left, l.ky_before - least(d.rank, l.ky_taken) AS ky_left
FROM d
JOIN left_after l ON l.user_id = d.user_id AND l.device_id = d.device_id
LEFT JOIN ec ON ec.user_id = d.user_id AND ec.device_id = d.device_id AND ec.rank = d.rank
LEFT JOIN ky ON ky.user_id = d.user_id AND ky.device_id = d.device_id AND ky.rank = d.rank
ORDER BY d.n, d.device_id`;

export function createKeysStore({ prisma, sql }: Pick<ServiceDeps, "prisma" | "sql">) {
  /** Stores one-time keys inside the caller's transaction (a duplicate key id fails with a unique violation). */
  async function addOneTimeKeys(tx: Tx, actor: Actor, keys: OneTimeKeys): Promise<void> {
    const { userId, deviceId } = actor;
    if (keys.oneTimePreKeys?.length) {
      await tx.oneTimePreKey.createMany({
        data: keys.oneTimePreKeys.map((k) => ({ userId, deviceId, keyId: k.keyId, publicKey: bytes(k.publicKey) })),
      });
    }
    if (keys.oneTimeKyberPreKeys?.length) {
      await tx.oneTimeKyberPreKey.createMany({
        data: keys.oneTimeKyberPreKeys.map((k) => ({
          userId,
          deviceId,
          keyId: k.keyId,
          publicKey: bytes(k.publicKey),
          signature: bytes(k.signature),
        })),
      });
    }
  }

  /** Drops the device's one-time keys inside the caller's transaction (deactivation, key reset). */
  async function dropOneTimeKeys(tx: Tx, actor: Actor): Promise<void> {
    await tx.oneTimePreKey.deleteMany({ where: { userId: actor.userId, deviceId: actor.deviceId } });
    await tx.oneTimeKyberPreKey.deleteMany({ where: { userId: actor.userId, deviceId: actor.deviceId } });
  }

  async function counts(actor: Actor): Promise<{ ec: number; kyber: number }> {
    // One statement: every inbox subscription asks this, so it is one round trip and no query plan.
    const [row] = await prisma.$queryRaw<{ ec: number; kyber: number }[]>`
      SELECT (SELECT count(*) FROM one_time_pre_keys WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId})::int AS ec,
        (SELECT count(*) FROM one_time_kyber_pre_keys WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId})::int AS kyber`;
    return row;
  }

  /**
   * Runs a batch of claims (see CLAIM); rows in claim order, `n` numbering the claim from 1. ec_left and ky_left are
   * exact below `lowWaterMark` and at least `lowWaterMark` otherwise.
   */
  const claimRows = (claims: { userId: string; deviceId: number | null }[], lowWaterMark: number) =>
    sql<ClaimRow>(CLAIM, [claims.map((c) => c.userId), claims.map((c) => c.deviceId), lowWaterMark]);

  return { addOneTimeKeys, dropOneTimeKeys, counts, claimRows };
}
