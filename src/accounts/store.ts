// The accounts domain's tables: the only code that reads or writes users, devices and device_links (SQL and Prisma).
// Other domains ask for devices through the devices service (ports wired in src/app.ts). A few of their
// one-statement hot paths (sends, acknowledgements, pre-key claims, group retention) join `devices` where a second
// round trip would cost speed or atomicity; they name the table through DEVICES_TABLE so the exception is findable.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import type { Prisma } from "../generated/prisma/client.ts";

/**
 * `devices` for the statements of other domains that must join it in the same statement (see the file comment).
 * They rely on user_id, device_id, active, registration_id and the published key columns, nothing else.
 */
export const DEVICES_TABLE = "devices";

type Db = Tx | ServiceDeps["prisma"];

export type AccountsStore = ReturnType<typeof createAccountsStore>;

const deviceInfo = { userId: true, deviceId: true, name: true, registrationId: true, createdAt: true } as const;

export function createAccountsStore({ prisma, sql }: Pick<ServiceDeps, "prisma" | "sql">) {
  async function createUser(tx: Tx, userId: string, username: string | null): Promise<void> {
    await tx.user.create({ data: { id: userId, username } });
  }

  async function createDevice(tx: Tx, row: Prisma.DeviceUncheckedCreateInput): Promise<void> {
    await tx.device.create({ data: row });
  }

  const deviceByToken = (tokenHash: Uint8Array<ArrayBuffer>) =>
    prisma.device.findUnique({
      where: { tokenHash },
      select: { userId: true, deviceId: true, active: true },
    });

  async function createLink(tokenHash: Uint8Array<ArrayBuffer>, userId: string, expiresAt: Date): Promise<void> {
    await prisma.deviceLink.create({ data: { tokenHash, userId, expiresAt } });
  }

  /** Spends an unused, unexpired link; the rows spent (one, or none). */
  const spendLink = (tx: Tx, tokenHash: Uint8Array<ArrayBuffer>) =>
    tx.deviceLink.updateManyAndReturn({
      where: { tokenHash, usedAt: null, expiresAt: { gt: new Date() } },
      data: { usedAt: new Date() },
    });

  /** Serialises device additions per user so the cap and the next id are read consistently. */
  async function lockUser(tx: Tx, userId: string): Promise<void> {
    await tx.$queryRaw`SELECT id FROM users WHERE id = ${userId}::uuid FOR UPDATE`;
  }

  const devicesOf = (tx: Tx, userId: string) => tx.device.findMany({ where: { userId }, select: { deviceId: true, active: true } });

  const deviceState = (actor: Actor) =>
    prisma.device.findUnique({
      where: { userId_deviceId: { userId: actor.userId, deviceId: actor.deviceId } },
      select: { active: true },
    });

  /** Marks the device deactivated and forgets its token and published keys. */
  async function deactivate(tx: Tx, actor: Actor): Promise<void> {
    await tx.device.update({
      where: { userId_deviceId: { userId: actor.userId, deviceId: actor.deviceId } },
      data: {
        active: false,
        deactivatedAt: new Date(),
        tokenHash: null,
        signedPreKeyId: null,
        signedPreKey: null,
        signedPreKeySignature: null,
        kyberLastResortKeyId: null,
        kyberLastResortKey: null,
        kyberLastResortSignature: null,
      },
    });
  }

  /** Replaces an active device's published keys; false when it is not active. */
  async function replaceKeys(tx: Tx, actor: Actor, keys: Prisma.DeviceUncheckedUpdateManyInput): Promise<boolean> {
    const n = await tx.device.updateMany({ where: { userId: actor.userId, deviceId: actor.deviceId, active: true }, data: keys });
    return n.count === 1;
  }

  /** An active device with its published keys, or null. */
  const activeDevice = (actor: Actor) =>
    prisma.device.findFirst({
      where: { userId: actor.userId, deviceId: actor.deviceId, active: true },
    });

  async function updateKeys(actor: Actor, keys: Prisma.DeviceUncheckedUpdateInput): Promise<void> {
    await prisma.device.update({
      where: { userId_deviceId: { userId: actor.userId, deviceId: actor.deviceId } },
      data: keys,
    });
  }

  /** The active devices of these users (in the caller's transaction when given one). */
  async function activeDevices(db: Db, userIds: string[]) {
    return db.device.findMany({ where: { userId: { in: userIds }, active: true }, select: { userId: true, deviceId: true } });
  }

  /** The same, ordered by user and device, outside any transaction. */
  const activeDevicesInOrder = (userIds: string[]) =>
    prisma.device.findMany({
      where: { userId: { in: userIds }, active: true },
      select: { userId: true, deviceId: true },
      orderBy: [{ userId: "asc" }, { deviceId: "asc" }],
    });

  const listActive = (userId: string) =>
    prisma.device.findMany({
      where: { userId, active: true },
      orderBy: { deviceId: "asc" },
      select: deviceInfo,
    });

  const device = (actor: Actor) =>
    prisma.device.findUnique({
      where: { userId_deviceId: actor },
      select: deviceInfo,
    });

  const userById = (userId: string) => prisma.user.findUnique({ where: { id: userId }, select: { id: true, username: true } });

  const userByUsername = (username: string) =>
    prisma.user.findUnique({ where: { username }, select: { id: true, username: true } });

  async function readReceiptsEnabled(userId: string): Promise<boolean> {
    const u = await prisma.user.findUnique({ where: { id: userId }, select: { readReceipts: true } });
    return u?.readReceipts ?? false;
  }

  /** Which of these devices are still active, in one statement (a node re-validating its sockets). */
  async function stillActive(devices: Actor[]): Promise<Actor[]> {
    if (devices.length === 0) return [];
    return sql<Actor>(
      `SELECT d.user_id::text AS "userId", d.device_id AS "deviceId"
       FROM unnest($1::uuid[], $2::int[]) AS k(u, d) JOIN devices d ON d.user_id = k.u AND d.device_id = k.d
       WHERE d.active`,
      [devices.map((d) => d.userId), devices.map((d) => d.deviceId)],
    );
  }

  /**
   * At most `limit` link tokens that can never link again: spent, or past their lifetime. A spent link's hash is
   * kept by nothing (linkDevice spends it and adds the device in one transaction). SKIP LOCKED: a link being spent
   * right now is left for the next run.
   */
  async function purgeLinks(now: Date, limit: number): Promise<number> {
    return prisma.$executeRaw`
      DELETE FROM device_links WHERE token_hash IN (
        SELECT token_hash FROM device_links WHERE expires_at <= ${now} OR used_at IS NOT NULL
        LIMIT ${limit} FOR UPDATE SKIP LOCKED)`;
  }

  async function setReadReceipts(userId: string, enabled: boolean): Promise<void> {
    await prisma.user.update({ where: { id: userId }, data: { readReceipts: enabled } });
  }

  return {
    createUser,
    createDevice,
    deviceByToken,
    createLink,
    spendLink,
    lockUser,
    devicesOf,
    deviceState,
    deactivate,
    replaceKeys,
    activeDevice,
    updateKeys,
    activeDevices,
    activeDevicesInOrder,
    listActive,
    device,
    userById,
    userByUsername,
    readReceiptsEnabled,
    setReadReceipts,
    stillActive,
    purgeLinks,
  };
}
