// The Signal key directory: what a device publishes so others can start a PQXDH session with it, and the atomic
// hand-out of one-time keys. Every key is checked with libsignal before anything is stored.
import { badInput, conflict, notFound, isUniqueViolation } from "../errors.ts";
import { bytes } from "../bytes.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { createPreKeyClaims, type PreKeyBundle, type PreKeysLowHook, type PreKeyStatus } from "./claims.ts";
import {
  checkBatch,
  checkEcPreKey,
  checkSignedEcPreKey,
  checkSignedKyberPreKey,
  parseIdentityKey,
  type PreKey,
  type SignedPreKey,
} from "./parse.ts";

export type { PreKeyBundle, PreKeyStatus };

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

const MAX_REGISTRATION_ID = 0x3fff; // libsignal registration ids are 14-bit

export type KeysService = ReturnType<typeof createKeysService>;

export function createKeysService(
  deps: ServiceDeps,
  hooks: { preKeysLow: PreKeysLowHook } = { preKeysLow: () => {} },
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

  const claims = createPreKeyClaims(deps, hooks.preKeysLow);

  /** One bundle per active device of the user (or the one device asked for); see claims.ts. */
  function claimBundles(userId: string, deviceId?: number | null): Promise<PreKeyBundle[]> {
    return claims(userId, deviceId);
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
