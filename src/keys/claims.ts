// The hand-out of pre-key bundles. Claims that arrive together go to PostgreSQL as one statement (group commit, see
// batcher.ts): under load that is one round trip, one plan and one WAL flush for many claims instead of one each, and
// a burst after a pause queues as a bigger batch rather than as a row of statements waiting for connections. The
// statement itself is the store's (CLAIM in store.ts).
import { AppError, badInput, notFound } from "../errors.ts";
import { MAX_DEVICE_ID, canonicalUuid, isDeviceId } from "../ids.ts";
import { Batcher, type Settled, batchesInFlight } from "../live/batcher.ts";
import type { ServiceDeps } from "../deps.ts";
import type { ClaimRow, KeysStore } from "./store.ts";

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

export interface Claim {
  userId: string;
  deviceId: number | null;
}

/**
 * What a claim names, checked: the user in its canonical spelling and, when one is asked for, a device libsignal can
 * address. Checked here rather than by the validation plugin, which copies the arguments of every call it checks,
 * and a claim is what every first message to a device starts with.
 */
export function claimOf(userId: string, deviceId: number | null | undefined): Claim {
  const user = canonicalUuid(userId);
  if (!user) throw badInput("userId must be a UUID");
  if (deviceId != null && !isDeviceId(deviceId)) throw badInput(`deviceId must be 1-${MAX_DEVICE_ID}`);
  return { userId: user, deviceId: deviceId ?? null };
}

export function createPreKeyClaims(
  { config, observeBatch }: Pick<ServiceDeps, "config" | "observeBatch">,
  store: Pick<KeysStore, "claimRows">,
  preKeysLow: PreKeysLowHook,
) {
  async function claimBatch(claims: Claim[]): Promise<Settled<PreKeyBundle[]>[]> {
    const rows = await store.claimRows(claims, config.preKeyLowWaterMark);
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
    maxConcurrent: batchesInFlight(config.database, 4),
    onBatch: (n) => observeBatch?.("preKeyClaims", n),
  });

  /** One bundle per active device of the user (or the one device asked for). */
  return async function claimBundles(userId: string, deviceId?: number | null): Promise<PreKeyBundle[]> {
    return batches.submit(claimOf(userId, deviceId));
  };
}
