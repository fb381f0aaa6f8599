// The hand-out of pre-key bundles. Claims that arrive together go to PostgreSQL as one statement (group commit, see
// batcher.ts): under load that is one round trip, one plan and one WAL flush for many claims instead of one each, and
// a burst after a pause queues as a bigger batch rather than as a row of statements waiting for connections.
import { AppError, notFound } from "../errors.ts";
import { Batcher, type Settled } from "../live/batcher.ts";
import type { ServiceDeps } from "../deps.ts";

export interface PreKeyStatus {
  oneTimePreKeys: number;
  oneTimeKyberPreKeys: number;
  lowWaterMark: number;
  isLow: boolean;
}

export interface PreKeyBundle {
  userId: string;
  deviceId: number;
  registrationId: number;
  identityKey: Uint8Array;
  signedPreKeyId: number;
  signedPreKey: Uint8Array;
  signedPreKeySignature: Uint8Array;
  preKeyId: number | null;
  preKey: Uint8Array | null;
  kyberPreKeyId: number;
  kyberPreKey: Uint8Array;
  kyberPreKeySignature: Uint8Array;
}

export type PreKeysLowHook = (userId: string, deviceId: number, status: PreKeyStatus) => void;

interface Claim {
  userId: string;
  deviceId: number | null;
}

/** One device's row for one claim (n) of the batch. */
interface ClaimRow {
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
 * snapshot, before the deletes, for the low-water hint.
 */
const CLAIM = `
WITH d AS (
  SELECT r.n::int AS n, v.*, row_number() OVER (PARTITION BY v.user_id, v.device_id ORDER BY r.n)::int AS rank
  FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS r(user_id, device_id, n)
  JOIN devices v ON v.user_id = r.user_id AND v.active AND (r.device_id IS NULL OR v.device_id = r.device_id)),
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
         (SELECT count(*) FROM one_time_pre_keys o WHERE o.user_id = w.user_id AND o.device_id = w.device_id)::int
           AS ec_before,
         (SELECT count(*) FROM ec_pick p WHERE p.user_id = w.user_id AND p.device_id = w.device_id)::int AS ec_taken,
         (SELECT count(*) FROM one_time_kyber_pre_keys o WHERE o.user_id = w.user_id AND o.device_id = w.device_id)::int
           AS ky_before,
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

export function createPreKeyClaims({ sql, config, observeBatch }: ServiceDeps, preKeysLow: PreKeysLowHook) {
  async function claimBatch(claims: Claim[]): Promise<Settled<PreKeyBundle[]>[]> {
    const rows = await sql<ClaimRow>(CLAIM, [claims.map((c) => c.userId), claims.map((c) => c.deviceId)]);
    const byClaim = claims.map((): ClaimRow[] => []);
    for (const r of rows) byClaim[r.n - 1].push(r);
    return claims.map((c, i) => {
      try {
        return { ok: true, value: bundles(c, byClaim[i]) };
      } catch (error) {
        return { ok: false, error };
      }
    });
  }

  function bundles(claim: Claim, rows: ClaimRow[]): PreKeyBundle[] {
    if (rows.length === 0) {
      throw notFound(claim.deviceId != null ? "no such active device" : "no such user, or the user has no active device");
    }
    const lowWaterMark = config.preKeyLowWaterMark;
    return rows.map((r) => {
      if (!r.signed_pre_key || !r.kyber_last_resort_key) {
        throw new AppError("NOT_FOUND", `device ${r.device_id} has no published keys`);
      }
      const isLow = r.ec_left < lowWaterMark || r.ky_left < lowWaterMark;
      if (isLow) {
        preKeysLow(claim.userId, r.device_id, {
          oneTimePreKeys: r.ec_left,
          oneTimeKyberPreKeys: r.ky_left,
          lowWaterMark,
          isLow,
        });
      }
      return {
        userId: claim.userId,
        deviceId: r.device_id,
        registrationId: r.registration_id,
        identityKey: r.identity_key,
        signedPreKeyId: r.signed_pre_key_id!,
        signedPreKey: r.signed_pre_key,
        signedPreKeySignature: r.signed_pre_key_signature!,
        preKeyId: r.ec_key_id,
        preKey: r.ec_public_key,
        kyberPreKeyId: r.ky_key_id ?? r.kyber_last_resort_key_id!,
        kyberPreKey: r.ky_public_key ?? r.kyber_last_resort_key,
        kyberPreKeySignature: r.ky_signature ?? r.kyber_last_resort_signature!,
      };
    });
  }

  // A quarter of the pool at most, so a burst of claims grows the batches instead of taking every connection.
  const batches = new Batcher<Claim, PreKeyBundle[]>(claimBatch, {
    maxBatch: 100,
    maxConcurrent: config.database.kind === "postgres" ? Math.max(1, Math.floor(config.database.poolSize / 4)) : 1,
    onBatch: (n) => observeBatch?.("preKeyClaims", n),
  });

  /** One bundle per active device of the user (or the one device asked for). */
  return function claimBundles(userId: string, deviceId?: number | null): Promise<PreKeyBundle[]> {
    return batches.submit({ userId, deviceId: deviceId ?? null });
  };
}
