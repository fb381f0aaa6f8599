// The groups domain's tables: the only code that reads or writes groups, group_members, group_devices and
// group_messages (SQL and Prisma). The sweep joins the accounts domain's devices (DEVICES_TABLE): which copies every
// active device acknowledged is one statement's question, asked in batches of rows.
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import { Prisma } from "../generated/prisma/client.ts";
import { bytes } from "../bytes.ts";
import { longTransaction } from "../db/transactions.ts";
import type { Membership } from "../live/group-stream.ts";
import { groupEvent, type GroupEventKind, type GroupEventPayload } from "./events.ts";
import type { DeviceRef } from "./mls-framing.ts";
import type { GroupRole } from "./rules.ts";
import { DEVICES_TABLE } from "../accounts/store.ts";

export type GroupsStore = ReturnType<typeof createGroupsStore>;

/** refers_to of an application message deleted for everyone (MESSAGE_DELETED events name the message instead). */
export const DELETED = "deleted";

type Db = Tx | ServiceDeps["prisma"];

/** A row of group_messages about to be written. */
export interface NewGroupEvent {
  seq: bigint;
  kind: GroupEventKind;
  message: Uint8Array | null;
  senderUserId: string;
  senderDeviceId: number;
  refersTo?: string | null;
}

export function createGroupsStore({ prisma, sql }: Pick<ServiceDeps, "prisma" | "sql">) {
  /** Interactive transactions with room for a 1,500-member commit (see longTransaction). */
  const transaction = longTransaction(prisma);

  const find = (id: string) => prisma.group.findUnique({ where: { id } });

  async function memberRole(db: Db, groupId: string, userId: string): Promise<GroupRole | null> {
    const m = await db.groupMember.findUnique({ where: { groupId_userId: { groupId, userId } } });
    return (m?.role as GroupRole | undefined) ?? null;
  }

  async function create(
    id: string,
    creator: Actor,
    g: { mlsGroupId: Uint8Array; name: string | null; description: string | null; groupInfo: Uint8Array | null },
  ) {
    return transaction(async (tx) => {
      const group = await tx.group.create({
        data: {
          id,
          mlsGroupId: bytes(g.mlsGroupId),
          name: g.name,
          description: g.description,
          createdBy: creator.userId,
          groupInfo: g.groupInfo ? bytes(g.groupInfo) : null,
        },
      });
      await tx.groupMember.create({ data: { groupId: id, userId: creator.userId, role: "admin" } });
      await tx.groupDevice.create({
        data: { groupId: id, userId: creator.userId, deviceId: creator.deviceId, joinedEpoch: 0, fromSeq: 1n, ackedSeq: 0n },
      });
      return group;
    });
  }

  const memberCount = (groupId: string) => prisma.groupMember.count({ where: { groupId } });

  /** The user's groups with their member counts, oldest first. */
  async function ofUser(userId: string) {
    const rows = await prisma.$queryRaw<
      { id: string; mls_group_id: Uint8Array; epoch: number; name: string | null; description: string | null; expires_in_seconds: number | null; n: bigint }[]
    >`SELECT g.id::text, g.mls_group_id, g.epoch, g.name, g.description, g.expires_in_seconds,
             (SELECT count(*) FROM group_members c WHERE c.group_id = g.id) AS n
      FROM group_members m JOIN groups g ON g.id = m.group_id
      WHERE m.user_id = ${userId}::uuid ORDER BY g.created_at, g.id`;
    return rows.map((r) => ({
      group: { id: r.id, mlsGroupId: r.mls_group_id, epoch: r.epoch, name: r.name, description: r.description, expiresInSeconds: r.expires_in_seconds },
      memberCount: Number(r.n),
    }));
  }

  async function members(groupId: string, offset: number, limit: number) {
    return prisma.groupMember.findMany({
      where: { groupId },
      orderBy: [{ joinedAt: "asc" }, { userId: "asc" }],
      skip: offset,
      take: limit,
    });
  }

  /** Locks the group row for a commit; its epoch and last sequence number under the lock. */
  async function lock(tx: Tx, groupId: string) {
    const [locked] = await tx.$queryRaw<{ epoch: number; last_seq: bigint }[]>`
      SELECT epoch, last_seq FROM groups WHERE id = ${groupId}::uuid FOR UPDATE`;
    return locked;
  }

  async function roster(tx: Tx, groupId: string): Promise<Map<string, GroupRole>> {
    const rows = await tx.groupMember.findMany({ where: { groupId } });
    return new Map(rows.map((m) => [m.userId, m.role as GroupRole]));
  }

  const devicesInTree = (tx: Tx, groupId: string) => tx.groupDevice.findMany({ where: { groupId, inTree: true } });

  /** Writes an accepted commit: the new epoch and tree, its events, and the roster and device changes. */
  async function applyCommit(
    tx: Tx,
    c: {
      groupId: string;
      epoch: number;
      lastSeq: bigint;
      groupInfo: Uint8Array;
      events: NewGroupEvent[];
      removesMembers: string[];
      /** Devices leaving the tree with the commit (their delivery ends at commitSeq). */
      removed: DeviceRef[];
      commitSeq: bigint;
      addUserIds: string[];
      added: DeviceRef[];
      welcomeSeq: bigint | null;
    },
  ): Promise<Date> {
    const { groupId, epoch } = c;
    const createdAt = new Date();
    await tx.group.update({
      where: { id: groupId },
      data: { epoch, lastSeq: c.lastSeq, groupInfo: bytes(c.groupInfo), updatedAt: createdAt },
    });
    await tx.groupMessage.createMany({
      data: c.events.map((r) => ({ groupId, epoch, ...r, message: r.message ? bytes(r.message) : null, createdAt })),
    });
    if (c.removesMembers.length) await tx.groupMember.deleteMany({ where: { groupId, userId: { in: c.removesMembers } } });
    if (c.removed.length) {
      await tx.$executeRaw`
        UPDATE group_devices SET in_tree = false, until_seq = COALESCE(until_seq, ${c.commitSeq})
        WHERE group_id = ${groupId}::uuid AND (user_id, device_id) IN (
          SELECT * FROM unnest(${c.removed.map((d) => d.userId)}::uuid[], ${c.removed.map((d) => d.deviceId)}::int[]))`;
    }
    if (c.addUserIds.length) {
      await tx.groupMember.createMany({ data: c.addUserIds.map((userId) => ({ groupId, userId, role: "member" })) });
    }
    if (c.added.length) {
      await tx.$executeRaw`
        INSERT INTO group_devices (group_id, user_id, device_id, joined_epoch, from_seq, until_seq, acked_seq, in_tree)
        SELECT ${groupId}::uuid, t.user_id, t.device_id, ${epoch}, ${c.welcomeSeq}, NULL, ${c.welcomeSeq! - 1n}, true
        FROM unnest(${c.added.map((d) => d.userId)}::uuid[], ${c.added.map((d) => d.deviceId)}::int[])
          AS t(user_id, device_id)
        ON CONFLICT (group_id, user_id, device_id) DO UPDATE SET joined_epoch = EXCLUDED.joined_epoch,
          from_seq = EXCLUDED.from_seq, until_seq = NULL, acked_seq = EXCLUDED.acked_seq, in_tree = true`;
    }
    return createdAt;
  }

  /** Adds an event without MLS bytes (name, roles, someone left), numbered like the others. */
  async function appendEvent(tx: Tx, groupId: string, kind: GroupEventKind, actor: Actor, refersTo: string | null = null): Promise<GroupEventPayload> {
    const [g] = await tx.$queryRaw<{ epoch: number; last_seq: bigint }[]>`
      UPDATE groups SET last_seq = last_seq + 1, updated_at = now() WHERE id = ${groupId}::uuid RETURNING epoch, last_seq`;
    const createdAt = new Date();
    await tx.groupMessage.create({
      data: { groupId, seq: g.last_seq, kind, epoch: g.epoch, senderUserId: actor.userId, senderDeviceId: actor.deviceId, createdAt, refersTo },
    });
    return groupEvent(groupId, g.last_seq, kind, g.epoch, actor.userId, actor.deviceId, null, createdAt, refersTo);
  }

  async function updateInfo(
    tx: Tx,
    groupId: string,
    input: { name?: string | null; description?: string | null; expiresInSeconds?: number | null },
  ) {
    await tx.group.update({
      where: { id: groupId },
      data: {
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.expiresInSeconds !== undefined ? { expiresInSeconds: input.expiresInSeconds || null } : {}),
      },
    });
  }

  /** Whether the group keeps an admin other than `userId` (checked under the group row's lock). */
  const otherAdmins = (tx: Tx, groupId: string, userId: string) =>
    tx.groupMember.count({ where: { groupId, role: "admin", userId: { not: userId } } });

  /** The longest-standing member becomes admin when no admin is left. */
  async function ensureAdmin(tx: Tx, groupId: string): Promise<void> {
    if ((await tx.groupMember.count({ where: { groupId, role: "admin" } })) > 0) return;
    const heir = await tx.groupMember.findFirst({ where: { groupId }, orderBy: [{ joinedAt: "asc" }, { userId: "asc" }] });
    if (heir) await tx.groupMember.update({ where: { groupId_userId: { groupId, userId: heir.userId } }, data: { role: "admin" } });
  }

  /** A deactivated device sees nothing more of any group; its leaf stays until a member's next commit removes it. */
  async function endDevice(userId: string, deviceId: number): Promise<void> {
    await prisma.$executeRaw`
      UPDATE group_devices d SET until_seq = g.last_seq FROM groups g
      WHERE g.id = d.group_id AND d.user_id = ${userId}::uuid AND d.device_id = ${deviceId} AND d.until_seq IS NULL`;
  }

  /** Everyone sharing a group with `userId`. */
  async function coMembers(userId: string): Promise<string[]> {
    const rows = await prisma.$queryRaw<{ user_id: string }[]>`
      SELECT DISTINCT o.user_id::text FROM group_members m JOIN group_members o ON o.group_id = m.group_id
      WHERE m.user_id = ${userId}::uuid AND o.user_id <> ${userId}::uuid`;
    return rows.map((r) => r.user_id);
  }

  /** The sender deletes a message for everyone: its ciphertext goes, and the row is marked deleted. */
  const dropMessage = (tx: Tx, groupId: string, seq: bigint) =>
    tx.groupMessage.update({ where: { groupId_seq: { groupId, seq } }, data: { message: null, refersTo: DELETED } });

  const message = (groupId: string, seq: bigint) => prisma.groupMessage.findUnique({ where: { groupId_seq: { groupId, seq } } });

  /** Whether the user was a member whose role is now `role`. */
  async function setRole(tx: Tx, groupId: string, userId: string, role: GroupRole): Promise<boolean> {
    return (await tx.groupMember.updateMany({ where: { groupId, userId }, data: { role } })).count > 0;
  }

  /** The member leaves: its devices' delivery ends at `untilSeq`. Returns those devices. */
  async function removeMember(tx: Tx, groupId: string, userId: string, untilSeq: bigint): Promise<DeviceRef[]> {
    await tx.groupMember.delete({ where: { groupId_userId: { groupId, userId } } });
    const devices = await tx.groupDevice.findMany({ where: { groupId, userId, untilSeq: null } });
    await tx.groupDevice.updateMany({ where: { groupId, userId, untilSeq: null }, data: { untilSeq } });
    return devices;
  }

  const groupDevice = (groupId: string, device: Actor) =>
    prisma.groupDevice.findUnique({
      where: { groupId_userId_deviceId: { groupId, userId: device.userId, deviceId: device.deviceId } },
    });

  /** Application messages in a seq range from an epoch on, newest first (or oldest first when inverted). */
  async function applicationMessages(
    groupId: string,
    r: { fromEpoch: number; fromSeq: bigint; untilSeq: bigint | null; after: bigint | null; before: bigint | null },
    inverted: boolean,
    limit: number,
  ) {
    return prisma.groupMessage.findMany({
      where: {
        groupId,
        kind: "APPLICATION",
        refersTo: null,
        epoch: { gte: r.fromEpoch },
        seq: {
          gte: r.fromSeq,
          ...(r.untilSeq !== null ? { lte: r.untilSeq } : {}),
          ...(r.after !== null ? { lt: r.after } : {}),
          ...(r.before !== null ? { gt: r.before } : {}),
        },
      },
      orderBy: { seq: inverted ? "asc" : "desc" },
      take: limit,
      select: { seq: true, senderUserId: true, senderDeviceId: true, createdAt: true },
    });
  }

  /** Events this device has not acknowledged, in group order, within what it may see. */
  async function pending(device: Actor, opts: { groupId?: string; afterSeq?: bigint; limit: number }) {
    const rows = await prisma.$queryRaw<
      { group_id: string; seq: bigint; kind: GroupEventKind; epoch: number; sender_user_id: string | null; sender_device_id: number | null; message: Uint8Array | null; created_at: Date; refers_to: string | null }[]
    >`SELECT m.group_id::text, m.seq, m.kind, m.epoch, m.sender_user_id::text, m.sender_device_id, m.message, m.created_at, m.refers_to
      FROM group_devices d JOIN group_messages m ON m.group_id = d.group_id
        AND m.seq > GREATEST(d.acked_seq, ${opts.afterSeq ?? 0n}::bigint) AND m.seq >= d.from_seq
        AND (d.until_seq IS NULL OR m.seq <= d.until_seq)
        AND m.epoch >= d.joined_epoch AND (m.kind <> 'WELCOME' OR m.seq = d.from_seq)
      WHERE d.user_id = ${device.userId}::uuid AND d.device_id = ${device.deviceId}
        AND (${opts.groupId ?? null}::uuid IS NULL OR d.group_id = ${opts.groupId ?? null}::uuid)
      ORDER BY m.group_id, m.seq LIMIT ${opts.limit}`;
    return rows.map((r) => groupEvent(r.group_id, r.seq, r.kind, r.epoch, r.sender_user_id, r.sender_device_id, r.message, r.created_at, r.refers_to));
  }

  // Raw: every inbox subscription asks it, and a raw statement allocates about a third less than findMany (measured
  // with the sampling heap profiler: 30 KiB against 47 KiB per call), which is garbage every connect leaves behind.
  async function memberships(device: Actor, groupId?: string): Promise<Map<string, Membership>> {
    const rows = await prisma.$queryRaw<({ groupId: string } & Membership)[]>`
      SELECT group_id::text AS "groupId", joined_epoch AS "joinedEpoch", from_seq AS "fromSeq", until_seq AS "untilSeq"
      FROM group_devices WHERE user_id = ${device.userId}::uuid AND device_id = ${device.deviceId}
        AND (${groupId ?? null}::uuid IS NULL OR group_id = ${groupId ?? null}::uuid)`;
    return new Map(rows.map((r) => [r.groupId, { joinedEpoch: r.joinedEpoch, fromSeq: r.fromSeq, untilSeq: r.untilSeq }]));
  }

  /** For the re-check (live/recheck.ts): every membership of these devices not read to its end, with the group's
   * last sequence number (or the membership's end if sooner). One statement over group_devices_device_idx. */
  async function tops(devices: Actor[]) {
    if (devices.length === 0) return [];
    const rows = await sql<{ userId: string; deviceId: number; groupId: string; top: string; ended: boolean }>(
      `SELECT d.user_id::text AS "userId", d.device_id AS "deviceId", d.group_id::text AS "groupId",
              LEAST(g.last_seq, COALESCE(d.until_seq, g.last_seq))::text AS top, d.until_seq IS NOT NULL AS ended
       FROM unnest($1::uuid[], $2::int[]) AS k(u, d)
       JOIN group_devices d ON d.user_id = k.u AND d.device_id = k.d
       JOIN groups g ON g.id = d.group_id
       WHERE d.until_seq IS NULL OR d.acked_seq < d.until_seq`,
      [devices.map((d) => d.userId), devices.map((d) => d.deviceId)],
    );
    return rows.map((r) => ({ ...r, top: Number(r.top) }));
  }

  /**
   * Retention, at most `limit` rows a statement. Events every active member device that may see them acknowledged
   * go, except that an application message keeps its metadata row (history, receipts, deletion) without its
   * ciphertext until `cutoff.metadata`; events older than `cutoff.queue` go whoever still lacks them. SKIP LOCKED:
   * nodes sweeping at once take different rows. purgeEvents returns the deleted rows (their receipts go with them).
   */
  const unneeded = Prisma.sql`NOT EXISTS (
        SELECT 1 FROM group_devices d JOIN ${Prisma.raw(DEVICES_TABLE)} v ON v.user_id = d.user_id AND v.device_id = d.device_id AND v.active
        WHERE d.group_id = m.group_id AND d.acked_seq < m.seq AND m.seq >= d.from_seq
          AND (d.until_seq IS NULL OR m.seq <= d.until_seq))`;
  async function purgeEvents(tx: Tx, cutoff: { queue: Date; metadata: Date }, limit: number) {
    return tx.$queryRaw<{ groupId: string; seq: bigint }[]>`
      DELETE FROM group_messages WHERE (group_id, seq) IN (
        SELECT m.group_id, m.seq FROM group_messages m
        WHERE m.created_at < ${cutoff.queue}
           OR (${unneeded} AND (m.kind <> 'APPLICATION' OR (m.message IS NULL AND m.created_at < ${cutoff.metadata})))
        LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING group_id::text AS "groupId", seq`;
  }
  async function stripDelivered(limit: number): Promise<number> {
    return prisma.$executeRaw`
      UPDATE group_messages SET message = NULL WHERE (group_id, seq) IN (
        SELECT m.group_id, m.seq FROM group_messages m
        WHERE m.kind = 'APPLICATION' AND m.message IS NOT NULL AND ${unneeded}
        LIMIT ${limit} FOR UPDATE SKIP LOCKED)`;
  }

  /**
   * The devices a new group message is for now: members' devices not removed. Read for every group send, so through
   * `sql` (a named statement, planned once per connection) rather than Prisma's raw query (planned on every call).
   */
  async function currentDevices(groupId: string): Promise<DeviceRef[]> {
    return sql<DeviceRef>(
      `SELECT user_id::text AS "userId", device_id AS "deviceId" FROM group_devices
       WHERE group_id = $1::uuid AND until_seq IS NULL`,
      [groupId],
    );
  }

  return {
    purgeEvents,
    stripDelivered,
    transaction,
    currentDevices,
    find,
    memberRole,
    create,
    memberCount,
    ofUser,
    members,
    lock,
    roster,
    devicesInTree,
    applyCommit,
    appendEvent,
    updateInfo,
    setRole,
    removeMember,
    groupDevice,
    applicationMessages,
    pending,
    memberships,
    tops,
    otherAdmins,
    ensureAdmin,
    endDevice,
    coMembers,
    dropMessage,
    message,
  };
}
