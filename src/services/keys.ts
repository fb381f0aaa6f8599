// The Signal key directory: what a device publishes so others can start a PQXDH session with it, and the atomic
// hand-out of one-time keys. Every key is checked with libsignal before anything is stored.
import { AppError, badInput, conflict, notFound } from "../errors.ts";
import { isUniqueViolation } from "../store/errors.ts";
import type { Actor, ServiceDeps, Tx } from "./deps.ts";
import {
  checkBatch,
  checkEcPreKey,
  checkSignedEcPreKey,
  checkSignedKyberPreKey,
  parseIdentityKey,
  type PreKey,
  type SignedPreKey,
} from "./signal-keys.ts";

export interface DeviceKeys {
  identityKey: Uint8Array<ArrayBuffer>;
  registrationId: number;
  signedPreKey: SignedPreKey;
  lastResortKyberPreKey: SignedPreKey;
  oneTimePreKeys?: PreKey[] | null;
  oneTimeKyberPreKeys?: SignedPreKey[] | null;
}

export interface OneTimeKeys {
  oneTimePreKeys?: PreKey[] | null;
  oneTimeKyberPreKeys?: SignedPreKey[] | null;
}

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

const MAX_REGISTRATION_ID = 0x3fff; // libsignal registration ids are 14-bit

/** One device's row of the claim statement. */
interface ClaimRow {
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
  ec_before: number;
  ky_before: number;
}

export type KeysService = ReturnType<typeof createKeysService>;

export function createKeysService(
  deps: ServiceDeps,
  hooks: { preKeysLow(userId: string, deviceId: number, status: PreKeyStatus): void } = { preKeysLow: () => {} },
) {
  const { prisma, config } = deps;

  /** Validates a full key set (registration, linking); throws before anything is stored. */
  function checkDeviceKeys(keys: DeviceKeys): void {
    if (!Number.isInteger(keys.registrationId) || keys.registrationId < 1 || keys.registrationId > MAX_REGISTRATION_ID) {
      throw badInput(`registrationId must be an integer from 1 to ${MAX_REGISTRATION_ID}`);
    }
    const identity = parseIdentityKey(keys.identityKey);
    checkSignedEcPreKey(identity, keys.signedPreKey, "signedPreKey");
    checkSignedKyberPreKey(identity, keys.lastResortKyberPreKey, "lastResortKyberPreKey");
    checkOneTimeKeys(keys.identityKey, keys);
  }

  function checkOneTimeKeys(identityKey: Uint8Array<ArrayBuffer>, keys: OneTimeKeys): void {
    const identity = parseIdentityKey(identityKey);
    const ec = keys.oneTimePreKeys ?? [];
    const kyber = keys.oneTimeKyberPreKeys ?? [];
    checkBatch(ec, "oneTimePreKeys");
    checkBatch(kyber, "oneTimeKyberPreKeys");
    ec.forEach((k, i) => checkEcPreKey(k, `oneTimePreKeys[${i}]`));
    kyber.forEach((k, i) => checkSignedKyberPreKey(identity, k, `oneTimeKyberPreKeys[${i}]`));
  }

  /** Stores one-time keys inside the caller's transaction; a key id the device already has is a CONFLICT. */
  async function storeOneTimeKeys(tx: Tx, actor: Actor, keys: OneTimeKeys): Promise<void> {
    const { userId, deviceId } = actor;
    try {
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
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict("a one-time pre-key with that keyId is already stored for this device");
      throw err;
    }
  }

  async function activeDevice(actor: Actor) {
    const device = await prisma.device.findFirst({
      where: { userId: actor.userId, deviceId: actor.deviceId, active: true },
    });
    if (!device) throw notFound("device not found");
    return device;
  }

  async function status(actor: Actor): Promise<PreKeyStatus> {
    // One statement: every inbox subscription asks this, so it is one round trip and no query plan.
    const [{ ec, kyber }] = await prisma.$queryRaw<{ ec: number; kyber: number }[]>`
      SELECT (SELECT count(*) FROM one_time_pre_keys WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId})::int AS ec,
        (SELECT count(*) FROM one_time_kyber_pre_keys WHERE user_id = ${actor.userId}::uuid AND device_id = ${actor.deviceId})::int AS kyber`;
    const lowWaterMark = config.preKeyLowWaterMark;
    return { oneTimePreKeys: ec, oneTimeKyberPreKeys: kyber, lowWaterMark, isLow: ec < lowWaterMark || kyber < lowWaterMark };
  }

  async function uploadPreKeys(actor: Actor, keys: OneTimeKeys): Promise<PreKeyStatus> {
    const device = await activeDevice(actor);
    checkOneTimeKeys(device.identityKey, keys);
    await prisma.$transaction((tx) => storeOneTimeKeys(tx, actor, keys));
    return status(actor);
  }

  async function rotateSignedPreKey(actor: Actor, key: SignedPreKey): Promise<boolean> {
    const device = await activeDevice(actor);
    checkSignedEcPreKey(parseIdentityKey(device.identityKey), key, "signedPreKey");
    await prisma.device.update({
      where: { userId_deviceId: { userId: actor.userId, deviceId: actor.deviceId } },
      data: { signedPreKeyId: key.keyId, signedPreKey: bytes(key.publicKey), signedPreKeySignature: bytes(key.signature) },
    });
    return true;
  }

  async function rotateLastResortKyberPreKey(actor: Actor, key: SignedPreKey): Promise<boolean> {
    const device = await activeDevice(actor);
    checkSignedKyberPreKey(parseIdentityKey(device.identityKey), key, "lastResortKyberPreKey");
    await prisma.device.update({
      where: { userId_deviceId: { userId: actor.userId, deviceId: actor.deviceId } },
      data: {
        kyberLastResortKeyId: key.keyId,
        kyberLastResortKey: bytes(key.publicKey),
        kyberLastResortSignature: bytes(key.signature),
      },
    });
    return true;
  }

  /**
   * One bundle per active device of the user (or the one device asked for). Each bundle consumes one one-time EC
   * pre-key and one one-time Kyber pre-key if any are left. It is one statement, so one round trip and atomic by
   * itself; SKIP LOCKED makes concurrent claims take different keys instead of waiting for each other. The counts
   * are read in the same snapshot, before the deletes, for the low-water hint.
   */
  async function claimBundles(_actor: Actor, userId: string, deviceId?: number | null): Promise<PreKeyBundle[]> {
    const rows = await prisma.$queryRaw<ClaimRow[]>`
      WITH d AS (
        SELECT * FROM devices
        WHERE user_id = ${userId}::uuid AND active AND (${deviceId ?? null}::int IS NULL OR device_id = ${deviceId ?? null}::int)),
      ec_pick AS (
        SELECT k.* FROM d CROSS JOIN LATERAL (
          SELECT user_id, device_id, key_id FROM one_time_pre_keys o
          WHERE o.user_id = d.user_id AND o.device_id = d.device_id
          ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) k),
      ec AS (
        DELETE FROM one_time_pre_keys o USING ec_pick p
        WHERE o.user_id = p.user_id AND o.device_id = p.device_id AND o.key_id = p.key_id
        RETURNING o.device_id, o.key_id, o.public_key),
      ky_pick AS (
        SELECT k.* FROM d CROSS JOIN LATERAL (
          SELECT user_id, device_id, key_id FROM one_time_kyber_pre_keys o
          WHERE o.user_id = d.user_id AND o.device_id = d.device_id
          ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) k),
      ky AS (
        DELETE FROM one_time_kyber_pre_keys o USING ky_pick p
        WHERE o.user_id = p.user_id AND o.device_id = p.device_id AND o.key_id = p.key_id
        RETURNING o.device_id, o.key_id, o.public_key, o.signature)
      SELECT d.device_id, d.registration_id, d.identity_key,
             d.signed_pre_key_id, d.signed_pre_key, d.signed_pre_key_signature,
             d.kyber_last_resort_key_id, d.kyber_last_resort_key, d.kyber_last_resort_signature,
             ec.key_id AS ec_key_id, ec.public_key AS ec_public_key,
             ky.key_id AS ky_key_id, ky.public_key AS ky_public_key, ky.signature AS ky_signature,
             (SELECT count(*) FROM one_time_pre_keys o
               WHERE o.user_id = d.user_id AND o.device_id = d.device_id)::int AS ec_before,
             (SELECT count(*) FROM one_time_kyber_pre_keys o
               WHERE o.user_id = d.user_id AND o.device_id = d.device_id)::int AS ky_before
      FROM d LEFT JOIN ec ON ec.device_id = d.device_id LEFT JOIN ky ON ky.device_id = d.device_id
      ORDER BY d.device_id`;
    if (rows.length === 0) {
      throw notFound(deviceId != null ? "no such active device" : "no such user, or the user has no active device");
    }
    const lowWaterMark = config.preKeyLowWaterMark;
    return rows.map((r) => {
      if (!r.signed_pre_key || !r.kyber_last_resort_key) {
        throw new AppError("NOT_FOUND", `device ${r.device_id} has no published keys`);
      }
      const left = {
        oneTimePreKeys: r.ec_before - (r.ec_key_id != null ? 1 : 0),
        oneTimeKyberPreKeys: r.ky_before - (r.ky_key_id != null ? 1 : 0),
      };
      const isLow = left.oneTimePreKeys < lowWaterMark || left.oneTimeKyberPreKeys < lowWaterMark;
      if (isLow) hooks.preKeysLow(userId, r.device_id, { ...left, lowWaterMark, isLow });
      return {
        userId,
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

  return {
    checkDeviceKeys,
    storeOneTimeKeys,
    status,
    uploadPreKeys,
    rotateSignedPreKey,
    rotateLastResortKyberPreKey,
    claimBundles,
  };
}

/** Prisma's Bytes columns want an ArrayBuffer-backed Uint8Array. */
export function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b instanceof Uint8Array && b.buffer instanceof ArrayBuffer
    ? (b as Uint8Array<ArrayBuffer>)
    : new Uint8Array(b);
}
