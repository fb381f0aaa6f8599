// MLS groups with the server as delivery service (RFC 9750): it keeps the roster and roles, gives every member the
// one order of commits (a commit is accepted only at the group's current epoch, under the group row's lock), and
// stores every group event once per group with a per-group sequence number.
//
// Delivery is a cursor per member device (group_devices.acked_seq), not a queue row per device: one application
// message to 1,500 members is one INSERT, and what a device may see is a range (from_seq .. until_seq, epochs from
// joined_epoch) applied when reading. Live delivery publishes each event once on the group's channel; each
// subscriber checks the sequence is the next one it expects and otherwise re-reads from the database.
import { randomUUID } from "node:crypto";
import { channels } from "../live/channels.ts";
import { AppError, badInput, forbidden, notFound, isUniqueViolation } from "../errors.ts";
import type { Actor, ServiceDeps, Tx } from "../deps.ts";
import type { KeyPackagesService } from "./key-packages.ts";
import { cursorSeq, metadataCutoffs, type MessageInfo, type Page } from "../messages/rules.ts";
import { Feed } from "../live/feed.ts";
import { footprint } from "../live/footprint.ts";
import { createTreeCache } from "./tree-cache.ts";
import { GroupStream, type GroupSink } from "../live/group-stream.ts";
import { recheckGroups } from "../live/recheck.ts";
import { groupEvent, groupEventId, isGroupEventId, parseGroupEventId, type GroupEventPayload } from "./events.ts";
import { createGroupsStore, DELETED, type NewGroupEvent } from "./store.ts";
import { batchesInFlight } from "../live/batcher.ts";
import { createGroupAcks } from "./acks.ts";
import { createCursorStore } from "./cursor-store.ts";
import { createAppendStore } from "./append-store.ts";
import { createGroupSends } from "./sends.ts";
import { groupWakes, type GroupEvents } from "./wakes.ts";
export type { GroupEvents } from "./wakes.ts";
import type { ActiveDevicesPort, GroupReceipts } from "./receipts.ts";
import type { DeviceRef } from "./mls-framing.ts";
import {
  addedDevicesOf,
  checkClaimedKeyPackages,
  checkCommitEpoch,
  checkCommitSender,
  checkDeleteForEveryone,
  checkInitialTree,
  checkMlsGroupId,
  checkNextGroupInfo,
  checkNextTree,
  checkRosterChange,
  checkText,
  checkWithoutStoredTree,
  commitSeqs,
  isGroupId,
  removedDevicesOf,
  staleEpoch,
  storedEpoch,
  userChanges,
  type CommitInput,
  type GroupInfoView,
  type GroupRole,
} from "./rules.ts";
import {
  checkWelcome,
  deviceKey,
  parseApplicationMessage,
  parseCommit,
  parseGroupInfo,
  verifyCommitSignature,
  verifyTree,
} from "./mls-framing.ts";

export type { GroupEventKind, GroupEventPayload } from "./events.ts";
export * from "./rules.ts";

export type GroupsService = ReturnType<typeof createGroupsService>;


export function createGroupsService(
  deps: ServiceDeps,
  keyPackages: Pick<KeyPackagesService, "claimedBy">,
  receipts: GroupReceipts,
  accounts: ActiveDevicesPort,
  events?: GroupEvents,
) {
  const { bus, config, logger } = deps;
  const store = createGroupsStore(deps);
  const inTx = store.transaction;
  // Parsing a 1,500-leaf tree costs milliseconds; the latest one of each recently committed group is kept.
  const treeCache = createTreeCache();
  // As many send batches in flight as the 1:1 sends' (half the pool), acknowledgement batches as the inbox's (a quarter).
  const append = createGroupSends({
    store: createAppendStore(deps),
    maxConcurrent: batchesInFlight(config.database, 2),
    maxQueued: config.messaging.sendQueueLimit,
    onBatch: (n) => deps.observeBatch?.("groupSends", n),
  });
  const wakeMembers = groupWakes(events, (groupId) => store.currentDevices(groupId));
  const ack = createGroupAcks({
    store: createCursorStore(deps),
    followUp: receipts.cursorMoves,
    maxConcurrent: batchesInFlight(config.database, 4),
    onBatch: (n) => deps.observeBatch?.("groupAcks", n),
  });

  function view(
    g: { id: string; mlsGroupId: Uint8Array; epoch: number; name: string | null; description: string | null; expiresInSeconds: number | null },
    memberCount: number,
  ): GroupInfoView {
    const { id, mlsGroupId, epoch, name, description, expiresInSeconds } = g;
    return { id, mlsGroupId, epoch, name, description, memberCount, expiresInSeconds };
  }

  async function requireMember(groupId: string, actor: Actor) {
    const group = await store.find(groupId);
    const role = group ? await store.memberRole(deps.prisma, groupId, actor.userId) : null;
    // Outsiders learn nothing, not even that the group exists.
    if (!group || !role) throw notFound("no such group");
    return { group, role };
  }

  async function create(
    actor: Actor,
    input: { mlsGroupId: Uint8Array; name?: string | null; description?: string | null; groupInfo?: Uint8Array | null },
  ): Promise<GroupInfoView> {
    checkMlsGroupId(input.mlsGroupId);
    checkText(input.name, input.description);
    if (input.groupInfo) {
      const tree = await parseGroupInfo(input.groupInfo);
      await verifyTree(tree, null);
      checkInitialTree(tree, input.mlsGroupId, actor);
    }
    const id = randomUUID();
    try {
      const group = await store.create(id, actor, {
        mlsGroupId: input.mlsGroupId,
        name: input.name ?? null,
        description: input.description ?? null,
        groupInfo: input.groupInfo ?? null,
      });
      // The creating device's live subscription starts following the group.
      await bus.publish(channels.groupJoins(actor.userId, actor.deviceId), { kind: "groupJoined", groupId: id });
      return view(group, 1);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError("CONFLICT", "a group with this mlsGroupId exists");
      throw err;
    }
  }

  async function isMember(userId: string, groupId: string): Promise<boolean> {
    if (!isGroupId(groupId)) return false;
    return (await store.memberRole(deps.prisma, groupId, userId)) !== null;
  }

  async function get(actor: Actor, groupId: string): Promise<GroupInfoView | null> {
    const group = await store.find(groupId);
    if (!group || !(await store.memberRole(deps.prisma, groupId, actor.userId))) return null;
    return view(group, await store.memberCount(groupId));
  }

  async function mine(actor: Actor): Promise<GroupInfoView[]> {
    return (await store.ofUser(actor.userId)).map((r) => view(r.group, r.memberCount));
  }

  async function members(actor: Actor, groupId: string, offset: number, limit: number) {
    await requireMember(groupId, actor);
    const rows = await store.members(groupId, offset, limit);
    return rows.map((r) => ({ userId: r.userId, role: r.role as GroupRole, joinedAt: r.joinedAt }));
  }

  async function previousTree(group: { id: string; epoch: number; groupInfo: Uint8Array | null }) {
    if (!group.groupInfo) return null;
    const cached = treeCache.get(group.id);
    if (cached && cached.epoch === group.epoch) return cached.parsed;
    const parsed = await parseGroupInfo(group.groupInfo, "stored groupInfo");
    treeCache.set(group.id, { epoch: group.epoch, parsed, bytes: group.groupInfo.byteLength });
    return parsed;
  }

  /**
   * Accepts a commit bundle only at the group's current epoch. The checks that need no lock (framing, signatures,
   * the new tree) run first; the roster rules run under the group row's lock, which also makes two racing commits
   * for one epoch accept exactly one.
   */
  async function commit(actor: Actor, input: CommitInput): Promise<{ epoch: number }> {
    const parsed = parseCommit(input.commit);
    const group = await store.find(input.groupId);
    if (!group || !(await store.memberRole(deps.prisma, group.id, actor.userId))) throw notFound("no such group");
    checkCommitEpoch(parsed, group);
    if (!input.groupInfo) throw badInput("groupInfo (with the ratchet tree extension) is required with every commit");
    const next = await parseGroupInfo(input.groupInfo);
    checkNextGroupInfo(next, group);
    const previous = await previousTree(group);
    checkCommitSender(parsed, previous, next, actor);
    await verifyTree(next, previous);
    if (previous && !(await verifyCommitSignature(parsed, previous))) throw badInput("commit: bad signature");
    if (!previous) checkWithoutStoredTree(parsed, group.epoch);
    const removedDevices = removedDevicesOf(parsed.removedLeaves, previous);
    const addedDevices = addedDevicesOf(parsed.addedKeyPackages, !!input.welcome);
    if (input.welcome) checkWelcome(input.welcome);
    const { addUserIds, removeUserIds } = userChanges(input, actor);

    const result = await inTx(async (tx) => {
      const locked = await store.lock(tx, group.id);
      if (locked.epoch !== group.epoch) throw staleEpoch(locked.epoch);
      const roster = await store.roster(tx, group.id);
      const role = roster.get(actor.userId);
      if (!role) throw notFound("no such group");
      const inTree = await store.devicesInTree(tx, group.id);
      const touched = [...new Set([...addUserIds, ...addedDevices.map((d) => d.userId), ...removedDevices.map((d) => d.userId)])];
      const active = new Map<string, Set<number>>();
      for (const d of touched.length ? await accounts.activeDevices(tx, touched) : []) (active.get(d.userId) ?? active.set(d.userId, new Set()).get(d.userId)!).add(d.deviceId);
      const change = checkRosterChange({
        actor, roster, inTree, active, addUserIds, removeUserIds, added: addedDevices, removed: removedDevices, maxMembers: config.maxGroupMembers,
      });
      checkClaimedKeyPackages(parsed.addedKeyPackages, await keyPackages.claimedBy(tx, actor.userId, parsed.addedKeyPackages.map((a) => a.ref)));
      checkNextTree(new Set(inTree.map(deviceKey)), change.wantRemoved, change.gotAdded, next);
      const c = { groupId: group.id, ...change, addUserIds, removeUserIds, removed: removedDevices, added: addedDevices, lastSeq: locked.last_seq, epoch: group.epoch };
      return { ...(await storeCommit(tx, actor, input, c)), added: addedDevices };
    });

    treeCache.set(group.id, { epoch: result.newEpoch, parsed: next, bytes: input.groupInfo.byteLength });
    for (const e of result.events) {
      if (e.kind === "WELCOME") {
        await Promise.all(
          result.added.map((d) => bus.publish(channels.groupJoins(d.userId, d.deviceId), { kind: "groupJoined", groupId: group.id })),
        );
      } else {
        await bus.publish(channels.group(group.id), e);
      }
    }
    logger.debug({ groupId: group.id, epoch: result.newEpoch }, "group commit accepted");
    return { epoch: result.newEpoch };
  }

  /** Numbers an accepted commit's events and writes it; returns the events to publish. */
  async function storeCommit(
    tx: Tx,
    actor: Actor,
    input: CommitInput,
    c: {
      groupId: string;
      removesMembers: string[];
      wantRemoved: Set<string>;
      addUserIds: string[];
      removeUserIds: string[];
      removed: DeviceRef[];
      added: DeviceRef[];
      lastSeq: bigint;
      epoch: number;
    },
  ) {
    const newEpoch = c.epoch + 1;
    const seqs = commitSeqs(c.lastSeq, !!input.welcome, c.addUserIds.length > 0 || c.removeUserIds.length > 0);
    const sender = { senderUserId: actor.userId, senderDeviceId: actor.deviceId };
    const rows: NewGroupEvent[] = [
      { seq: seqs.commitSeq, kind: "COMMIT", message: input.commit, ...sender },
      ...(seqs.welcomeSeq ? [{ seq: seqs.welcomeSeq, kind: "WELCOME" as const, message: input.welcome!, ...sender }] : []),
      ...(seqs.membersSeq ? [{ seq: seqs.membersSeq, kind: "MEMBERS_CHANGED" as const, message: null, ...sender }] : []),
    ];
    const createdAt = await store.applyCommit(tx, {
      groupId: c.groupId,
      epoch: newEpoch,
      lastSeq: seqs.lastSeq,
      groupInfo: input.groupInfo!,
      events: rows,
      removesMembers: c.removesMembers,
      removed: c.removed,
      commitSeq: seqs.commitSeq,
      addUserIds: c.addUserIds,
      added: c.added,
      welcomeSeq: seqs.welcomeSeq,
    });
    const events = rows.map((r) => groupEvent(c.groupId, r.seq, r.kind, newEpoch, r.senderUserId, r.senderDeviceId, r.message, createdAt));
    events[0].removed = [...c.wantRemoved];
    return { newEpoch, events };
  }

  /** An application message, stored once and numbered in the group's sequence. */
  async function send(actor: Actor, groupId: string, message: Uint8Array): Promise<{ messageId: string; serverTimestamp: Date }> {
    if (message.length > config.maxGroupMessageBytes) {
      throw new AppError("LIMIT_EXCEEDED", `a group message is at most ${config.maxGroupMessageBytes} bytes`, {
        maxBytes: config.maxGroupMessageBytes,
      });
    }
    const framing = parseApplicationMessage(message);
    const stored = await append({ actor, groupId, epoch: storedEpoch(framing.epoch), mlsGroupId: framing.groupId, message });
    await bus.publish(
      channels.group(groupId),
      groupEvent(groupId, stored.seq, "APPLICATION", stored.epoch, actor.userId, actor.deviceId, message, stored.createdAt),
    );
    wakeMembers(groupId, actor);
    return { messageId: groupEventId(groupId, stored.seq), serverTimestamp: stored.createdAt };
  }

  async function update(
    actor: Actor,
    groupId: string,
    input: { name?: string | null; description?: string | null; expiresInSeconds?: number | null },
  ) {
    checkText(input.name, input.description);
    const { role } = await requireMember(groupId, actor);
    if (role !== "admin") throw forbidden("only an admin changes the name or description");
    const event = await inTx(async (tx) => {
      await store.updateInfo(tx, groupId, input);
      return store.appendEvent(tx, groupId, "INFO_CHANGED", actor);
    });
    await bus.publish(channels.group(groupId), event);
    return (await get(actor, groupId))!;
  }

  async function setRole(actor: Actor, groupId: string, userId: string, role: GroupRole) {
    const { role: mine } = await requireMember(groupId, actor);
    if (mine !== "admin") throw forbidden("only an admin changes roles");
    const event = await inTx(async (tx) => {
      await store.lock(tx, groupId);
      if (role !== "admin" && (await store.otherAdmins(tx, groupId, userId)) === 0) {
        throw new AppError("CONFLICT", "the last admin cannot step down: make another member admin first");
      }
      if (!(await store.setRole(tx, groupId, userId, role))) throw notFound("that user is not a member");
      return store.appendEvent(tx, groupId, "MEMBERS_CHANGED", actor);
    });
    await bus.publish(channels.group(groupId), event);
    return true;
  }

  /**
   * Leaving ends delivery at once. The leaver's leaves stay in the MLS tree until some member commits their removal
   * (MLS does not let a member commit its own removal); any member may commit that.
   */
  async function leave(actor: Actor, groupId: string) {
    await requireMember(groupId, actor);
    const event = await inTx(async (tx) => {
      const e = await store.appendEvent(tx, groupId, "MEMBERS_CHANGED", actor);
      e.removed = (await store.removeMember(tx, groupId, actor.userId, BigInt(e.seq))).map(deviceKey);
      // A group is never left without an admin: the longest-standing member takes over from the last one.
      await store.ensureAdmin(tx, groupId);
      return e;
    });
    await bus.publish(channels.group(groupId), event);
    return true;
  }

  /**
   * The group's application messages this device may see (from its joining on, until its removal), newest first,
   * shaped like 1:1 message metadata so `messages(conversationId)` takes a group id. Acknowledged or not: this is
   * history, not the queue.
   */
  async function history(device: Actor, groupId: string, page: Page): Promise<MessageInfo[]> {
    const after = page.after ? cursorSeq(page.after) : null;
    const before = page.before ? cursorSeq(page.before) : null;
    const member = await store.groupDevice(groupId, device);
    if (!member) throw notFound("no such conversation");
    const range = { fromEpoch: member.joinedEpoch, fromSeq: member.fromSeq, untilSeq: member.untilSeq, after, before };
    const rows = await store.applicationMessages(groupId, range, page.inverted, page.limit);
    return rows.map((r) => ({
      id: groupEventId(groupId, r.seq),
      seq: r.seq,
      conversationId: groupId,
      senderUserId: r.senderUserId ?? "",
      senderDeviceId: r.senderDeviceId ?? 0,
      recipientUserId: null,
      clientMessageId: null,
      messageType: null,
      createdAt: r.createdAt,
      expiresAt: null,
      deliveredAt: null,
      readAt: null,
    }));
  }

  /** Events this device has not acknowledged, in group order, within what it may see. */
  async function pending(device: Actor, opts: { groupId?: string; afterSeq?: bigint; limit?: number } = {}) {
    return store.pending(device, { ...opts, limit: opts.limit ?? 500 });
  }

  /** Deletes a group message here (nothing to do on the server) or, by its sender within the window, for everyone. */
  async function deleteMessage(actor: Actor, messageId: string, forEveryone: boolean): Promise<boolean> {
    if (!forEveryone) return true;
    const p = parseGroupEventId(messageId);
    const m = p ? await store.message(p.groupId, p.seq) : null;
    if (!p || !m || m.kind !== "APPLICATION" || m.refersTo === DELETED) throw notFound("no such message");
    checkDeleteForEveryone(m, actor, config.messaging.deleteForEveryoneWindowSeconds);
    const event = await inTx(async (tx) => {
      await store.dropMessage(tx, p.groupId, p.seq);
      await receipts.forget(tx, p.groupId, p.seq);
      return store.appendEvent(tx, p.groupId, "MESSAGE_DELETED", actor, groupEventId(p.groupId, p.seq));
    });
    await bus.publish(channels.group(event.groupId), event);
    return true;
  }

  /** The current GroupInfo (with the ratchet tree), for members, including their own devices that are not in it yet. */
  async function groupInfo(actor: Actor, groupId: string): Promise<Uint8Array | null> {
    const g = await store.find(groupId);
    if (!g || !(await store.memberRole(deps.prisma, groupId, actor.userId))) return null;
    return g.groupInfo;
  }

  /**
   * One batch of retention (rows deleted and stripped): events every device acknowledged, or older than the queue
   * retention; a delivered message's metadata after the metadata retention (and the delete-for-everyone window).
   */
  async function sweep(now = new Date(), limit = 1_000): Promise<number> {
    const queue = new Date(now.getTime() - config.messaging.queueRetentionSeconds * 1000);
    const cutoff = { queue, metadata: metadataCutoffs(now, config.messaging).created };
    const deleted = await inTx(async (tx) => {
      const gone = await store.purgeEvents(tx, cutoff, limit);
      await receipts.forgetAll(tx, gone);
      return gone.length;
    });
    return deleted + (await store.stripDelivered(limit));
  }

  const streamDeps = { bus, logger, memberships: store.memberships, pending, open: new Set<GroupStream>() };
  const feedBudget = { maxBytes: config.messaging.inboxBufferBytes, sizeOf: footprint };
  /** Finds group events whose live publish was lost, for every group stream of this node (live/recheck.ts). */
  const recheck = () => recheckGroups(streamDeps.open, store);

  /** Queued events first, then live ones, for one device, pushed into `sink` until close(). */
  function follow(device: Actor, sink: GroupSink): GroupStream {
    return new GroupStream(streamDeps, device, sink);
  }

  /** The same in a Feed of its own (the groupEvents subscription), bounded like the inbox's. */
  function subscribe(device: Actor, onOverflow?: () => void): AsyncIterableIterator<GroupEventPayload> {
    const out = new Feed<GroupEventPayload>(config.messaging.inboxBufferLimit, feedBudget, onOverflow);
    const stream = follow(device, out);
    out.onClose(() => stream.close());
    return out;
  }

  /** The groups domain as a source of every device's inbox: its events, acknowledged with ackEnvelopes. */
  const inboxSource = { follow, owns: isGroupEventId, ack };

  return {
    create, isMember, get, mine, members, commit, send, update, setRole, leave, pending, history, ack, subscribe, follow, inboxSource, recheck,
    deleteMessage, groupInfo, sweep, markRead: receipts.markRead, messageStatus: receipts.status,
    deviceDeactivated: store.endDevice, coMembers: store.coMembers,
  };
}
