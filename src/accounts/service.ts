// Accounts and their devices: registration, linking a new device with a one-time link token, authentication of a
// device token, listing and deactivation. A device id is never reused within an account.
import { randomUUID } from "node:crypto";
import { channels, type ControlEvent } from "../live/channels.ts";
import { AppError, badInput, conflict, forbidden, notFound, isUniqueViolation } from "../errors.ts";
import type { Actor, ServiceDeps } from "../deps.ts";
import { bytes } from "../bytes.ts";
import type { DeviceKeys, KeysService } from "../keys/service.ts";
import { hashSecret, newSecret } from "./tokens.ts";
import { isPrimary, mayDeactivate, PRIMARY_DEVICE_ID } from "./rules.ts";
import type { AccountsStore } from "./store.ts";

export const USERNAME_PATTERN = /^[a-z0-9_.]{3,32}$/;
export const MAX_DEVICE_NAME = 64;

export interface DeviceCredentials {
  userId: string;
  deviceId: number;
  token: string;
}

export interface DeviceInfo {
  userId: string;
  deviceId: number;
  name: string | null;
  registrationId: number;
  createdAt: Date;
}

export type DevicesService = ReturnType<typeof createDevicesService>;

export function createDevicesService(
  deps: ServiceDeps,
  store: AccountsStore,
  keys: KeysService,
  hooks: { deviceListChanged(userId: string): void; deviceDeactivated?(userId: string, deviceId: number): Promise<void> } = {
    deviceListChanged: () => {},
  },
) {
  const { prisma, bus, config } = deps;

  function normaliseUsername(username: string | null | undefined): string | null {
    if (username == null) return null;
    const u = username.trim().toLowerCase();
    if (!USERNAME_PATTERN.test(u)) {
      throw badInput("username must be 3 to 32 characters of a-z, 0-9, '_' and '.'");
    }
    return u;
  }

  function checkDeviceName(name: string | null | undefined): string | null {
    if (name == null) return null;
    if (name.length > MAX_DEVICE_NAME) throw badInput(`deviceName must be at most ${MAX_DEVICE_NAME} characters`);
    return name;
  }

  function deviceRow(userId: string, deviceId: number, name: string | null, tokenHash: Uint8Array, k: DeviceKeys) {
    return {
      userId,
      deviceId,
      name,
      registrationId: k.registrationId,
      identityKey: bytes(k.identityKey),
      tokenHash: bytes(tokenHash),
      signedPreKeyId: k.signedPreKey.keyId,
      signedPreKey: bytes(k.signedPreKey.publicKey),
      signedPreKeySignature: bytes(k.signedPreKey.signature),
      kyberLastResortKeyId: k.lastResortKyberPreKey.keyId,
      kyberLastResortKey: bytes(k.lastResortKyberPreKey.publicKey),
      kyberLastResortSignature: bytes(k.lastResortKyberPreKey.signature),
    };
  }

  async function registerAccount(input: {
    username?: string | null;
    deviceName?: string | null;
    keys: DeviceKeys;
  }): Promise<DeviceCredentials> {
    const username = normaliseUsername(input.username);
    const name = checkDeviceName(input.deviceName);
    keys.checkDeviceKeys(input.keys);
    const userId = randomUUID();
    const token = newSecret("vgt");
    try {
      await prisma.$transaction(async (tx) => {
        await store.createUser(tx, userId, username);
        await store.createDevice(tx, deviceRow(userId, PRIMARY_DEVICE_ID, name, hashSecret(token), input.keys));
        await keys.storeOneTimeKeys(tx, { userId, deviceId: PRIMARY_DEVICE_ID }, input.keys);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict("that username is taken");
      throw err;
    }
    return { userId, deviceId: PRIMARY_DEVICE_ID, token };
  }

  /** Resolves a bearer token to its device; null for an unknown token or a deactivated device. */
  async function authenticate(token: string | null | undefined): Promise<Actor | null> {
    if (!token || token.length > 128) return null;
    const device = await store.deviceByToken(hashSecret(token));
    return device?.active ? { userId: device.userId, deviceId: device.deviceId } : null;
  }

  async function createLink(actor: Actor): Promise<{ token: string; expiresAt: Date }> {
    if (!isPrimary(actor)) throw forbidden(`only the primary device (device ${PRIMARY_DEVICE_ID}) links new devices`);
    const token = newSecret("vgl");
    const expiresAt = new Date(Date.now() + config.deviceLinkTtlSeconds * 1000);
    await store.createLink(hashSecret(token), actor.userId, expiresAt);
    return { token, expiresAt };
  }

  async function linkDevice(input: {
    linkToken: string;
    deviceName?: string | null;
    keys: DeviceKeys;
  }): Promise<DeviceCredentials> {
    const name = checkDeviceName(input.deviceName);
    keys.checkDeviceKeys(input.keys);
    const token = newSecret("vgt");
    const linkHash = bytes(hashSecret(input.linkToken));
    const credentials = await prisma.$transaction(async (tx) => {
      // Spending the link and adding the device are one step: a link works once, even when raced.
      const spent = await store.spendLink(tx, linkHash);
      if (spent.length !== 1) throw new AppError("FORBIDDEN", "the link token is unknown, used or expired");
      const userId = spent[0].userId;
      // Serialise device additions per user so the cap and the next id are read consistently.
      await store.lockUser(tx, userId);
      const all = await store.devicesOf(tx, userId);
      if (all.filter((d) => d.active).length >= config.maxDevicesPerUser) {
        throw new AppError("LIMIT_EXCEEDED", `an account has at most ${config.maxDevicesPerUser} active devices`);
      }
      const deviceId = Math.max(0, ...all.map((d) => d.deviceId)) + 1;
      await store.createDevice(tx, deviceRow(userId, deviceId, name, hashSecret(token), input.keys));
      await keys.storeOneTimeKeys(tx, { userId, deviceId }, input.keys);
      return { userId, deviceId, token };
    });
    hooks.deviceListChanged(credentials.userId);
    return credentials;
  }

  async function deactivate(actor: Actor, deviceId: number): Promise<boolean> {
    if (!mayDeactivate(actor, deviceId)) {
      throw forbidden(`a linked device may deactivate only itself; the primary device (device ${PRIMARY_DEVICE_ID}) removes others`);
    }
    const target = await store.deviceState({ userId: actor.userId, deviceId });
    if (!target) throw notFound("you have no device with that id");
    if (!target.active) return false;
    // One transaction: a deactivated device keeps no one-time key another device could still claim.
    await prisma.$transaction(async (tx) => {
      await keys.dropOneTimeKeys(tx, { userId: actor.userId, deviceId });
      await store.deactivate(tx, { userId: actor.userId, deviceId });
    });
    const revoked: ControlEvent = { kind: "deviceRevoked", userId: actor.userId, deviceId };
    await bus.publish(channels.control, revoked);
    await hooks.deviceDeactivated?.(actor.userId, deviceId);
    hooks.deviceListChanged(actor.userId);
    return true;
  }

  /**
   * Re-registration of a device that lost (or distrusts) its Signal state: new identity key, registration id,
   * signed and last-resort keys and one-time keys replace the old ones; the token and device id stay. Senders
   * holding the old registration id get STALE_DEVICES and fetch the new bundle.
   */
  async function resetKeys(actor: Actor, newKeys: DeviceKeys): Promise<boolean> {
    keys.checkDeviceKeys(newKeys);
    const row = deviceRow(actor.userId, actor.deviceId, null, new Uint8Array(), newKeys);
    const { userId: _u, deviceId: _d, name: _n, tokenHash: _t, ...replaced } = row;
    await prisma.$transaction(async (tx) => {
      await keys.dropOneTimeKeys(tx, actor);
      if (!(await store.replaceKeys(tx, actor, replaced))) throw notFound("device not found");
      await keys.storeOneTimeKeys(tx, actor, newKeys);
    });
    hooks.deviceListChanged(actor.userId);
    return true;
  }

  async function listActive(userId: string): Promise<DeviceInfo[]> {
    return store.listActive(userId);
  }

  async function get(actor: Actor): Promise<DeviceInfo> {
    const d = await store.device(actor);
    if (!d) throw notFound("device not found");
    return d;
  }

  async function userById(userId: string) {
    return store.userById(userId);
  }

  async function userByUsername(username: string) {
    const u = username.trim().toLowerCase();
    if (!USERNAME_PATTERN.test(u)) return null;
    return store.userByUsername(u);
  }

  return {
    // Asked by the key directory, key packages, groups and messages through their ports (src/app.ts): the device
    // and user rows are this domain's, so other domains read and write them only through these.
    activeDevice: store.activeDevice,
    setPublishedKeys: store.updateKeys,
    activeDevices: store.activeDevices,
    activeDevicesInOrder: store.activeDevicesInOrder,
    readReceiptsEnabled: store.readReceiptsEnabled,
    setReadReceipts: store.setReadReceipts,
    registerAccount,
    authenticate,
    createLink,
    linkDevice,
    deactivate,
    resetKeys,
    listActive,
    /** Which of these devices are still active, in one statement (a node re-validating its sockets). */
    stillActive: store.stillActive,
    /** One batch of retention: spent and expired link tokens. */
    purgeLinks: store.purgeLinks,
    get,
    userById,
    userByUsername,
  };
}
