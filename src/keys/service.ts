// The Signal key directory: what a device publishes so others can start a PQXDH session with it, and the atomic
// hand-out of one-time keys. Every key is checked with libsignal before anything is stored.
import { badInput, conflict, notFound, isUniqueViolation } from "../errors.ts";
import { bytes } from "../bytes.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { createPreKeyClaims, type PreKeyBundle, type PreKeysLowHook, type PreKeyStatus } from "./claims.ts";
import { createKeysStore, type OneTimeKeys } from "./store.ts";
import {
  checkBatch,
  checkEcPreKey,
  checkSignedEcPreKey,
  checkSignedKyberPreKey,
  parseIdentityKey,
  type PreKey,
  type SignedPreKey,
} from "./parse.ts";

export type { OneTimeKeys, PreKeyBundle, PreKeyStatus };

export interface DeviceKeys {
  identityKey: Uint8Array<ArrayBuffer>;
  registrationId: number;
  signedPreKey: SignedPreKey;
  lastResortKyberPreKey: SignedPreKey;
  oneTimePreKeys?: PreKey[] | null;
  oneTimeKyberPreKeys?: SignedPreKey[] | null;
}

const MAX_REGISTRATION_ID = 0x3fff; // libsignal registration ids are 14-bit

export type KeysService = ReturnType<typeof createKeysService>;

/** What the key directory asks the accounts domain (which owns the device row with its signed keys). */
export interface DeviceKeyRecords {
  activeDevice(actor: Actor): Promise<{ identityKey: Uint8Array<ArrayBuffer> } | null>;
  updateKeys(
    actor: Actor,
    keys:
      | { signedPreKeyId: number; signedPreKey: Uint8Array<ArrayBuffer>; signedPreKeySignature: Uint8Array<ArrayBuffer> }
      | { kyberLastResortKeyId: number; kyberLastResortKey: Uint8Array<ArrayBuffer>; kyberLastResortSignature: Uint8Array<ArrayBuffer> },
  ): Promise<void>;
}

export function createKeysService(
  deps: ServiceDeps,
  devices: DeviceKeyRecords,
  hooks: { preKeysLow: PreKeysLowHook } = { preKeysLow: () => {} },
) {
  const { prisma, config } = deps;
  const store = createKeysStore(deps);

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
    try {
      await store.addOneTimeKeys(tx, actor, keys);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict("a one-time pre-key with that keyId is already stored for this device");
      throw err;
    }
  }

  async function activeDevice(actor: Actor) {
    const device = await devices.activeDevice(actor);
    if (!device) throw notFound("device not found");
    return device;
  }

  async function status(actor: Actor): Promise<PreKeyStatus> {
    const { ec, kyber } = await store.counts(actor);
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
    await devices.updateKeys(actor, {
      signedPreKeyId: key.keyId,
      signedPreKey: bytes(key.publicKey),
      signedPreKeySignature: bytes(key.signature),
    });
    return true;
  }

  async function rotateLastResortKyberPreKey(actor: Actor, key: SignedPreKey): Promise<boolean> {
    const device = await activeDevice(actor);
    checkSignedKyberPreKey(parseIdentityKey(device.identityKey), key, "lastResortKyberPreKey");
    await devices.updateKeys(actor, {
      kyberLastResortKeyId: key.keyId,
      kyberLastResortKey: bytes(key.publicKey),
      kyberLastResortSignature: bytes(key.signature),
    });
    return true;
  }

  const claims = createPreKeyClaims(deps, store, hooks.preKeysLow);

  /** One bundle per active device of the user (or the one device asked for); see claims.ts. */
  function claimBundles(userId: string, deviceId?: number | null): Promise<PreKeyBundle[]> {
    return claims(userId, deviceId);
  }

  /** Drops the device's one-time keys inside the caller's transaction (deactivation, key reset). */
  const dropOneTimeKeys = (tx: Tx, actor: Actor) => store.dropOneTimeKeys(tx, actor);

  return {
    checkDeviceKeys,
    storeOneTimeKeys,
    dropOneTimeKeys,
    status,
    uploadPreKeys,
    rotateSignedPreKey,
    rotateLastResortKyberPreKey,
    claimBundles,
  };
}
