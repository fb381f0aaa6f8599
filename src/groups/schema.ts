// The GraphQL face of MLS: key packages, groups, commits, application messages and group events.
import { resolveOffsetConnection } from "@pothos/plugin-relay";
import { z } from "zod";
import type { GroupEventPayload, GroupInfoView } from "./service.ts";
import { MAX_GROUP_DESCRIPTION, MAX_GROUP_NAME } from "./service.ts";
import { MAX_KEY_PACKAGES_PER_UPLOAD } from "./key-packages.ts";
import { MAX_GROUP_RECEIPT_IDS } from "./receipts.ts";
import { MAX_GROUP_ACK_IDS } from "./acks.ts";
import { builder } from "../graphql/builder.ts";
import { CONTEXT_FREE } from "../graphql/shared-results.ts";
import { SendMessagePayload } from "../messages/schema.ts";
import { groupEventId, parseGroupEventId } from "./events.ts";
import { boundedList, shortText, uuid } from "../graphql/validation.ts";

// A commit adding 1,500 members names 1,500 users; nothing needs more in one call.
const MAX_USERS_PER_CALL = 2000;
// Checked and re-spelled canonically here; the services parse it again with the same reader.
const groupMessageId = z.string().max(64).transform((s, ctx) => {
  const p = parseGroupEventId(s);
  return p ? groupEventId(p.groupId, p.seq) : (ctx.addIssue({ code: "custom", message: "must be a group message id" }), z.NEVER);
});
// A year: timers beyond that are no timers.
const MAX_TIMER_SECONDS = 365 * 24 * 3600;
const userIdList = z.array(uuid).max(MAX_USERS_PER_CALL, { message: `must have at most ${MAX_USERS_PER_CALL} items` });

const GroupRole = builder.enumType("GroupRole", {
  description: "What a member may do in a group.",
  values: {
    ADMIN: { description: "Changes the roster, roles, name, description and timer" },
    MEMBER: { description: "Sends and reads" },
  } as const,
});
const GroupEventKind = builder.enumType("GroupEventKind", {
  description: "What a group event carries.",
  values: {
    COMMIT: { description: "An accepted MLS commit (PublicMessage): process it to reach its epoch" },
    WELCOME: { description: "An MLS Welcome: this device was added and joins from it" },
    APPLICATION: { description: "An MLS application message (PrivateMessage): a member's message" },
    MEMBERS_CHANGED: { description: "The roster or roles changed (read group members again)" },
    INFO_CHANGED: { description: "Name, description or default timer changed" },
    MESSAGE_DELETED: { description: "A message (refersTo) was deleted for everyone by its sender" },
  } as const,
});

const Group = builder.objectRef<GroupInfoView>("Group").implement({
  description: "An MLS group this server delivers for; it never holds the group's secrets.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The group's id (also works as a conversation id)" }),
    mlsGroupId: t.field({ type: "Bytes", description: "The MLS group id the creator chose", resolve: (g) => g.mlsGroupId }),
    epoch: t.exposeInt("epoch", { description: "The current MLS epoch: commits must be framed at it" }),
    name: t.exposeString("name", { nullable: true, description: "The group's name" }),
    description: t.exposeString("description", { nullable: true, description: "The group's description" }),
    memberCount: t.exposeInt("memberCount", { description: "How many users are members" }),
    expiresInSeconds: t.exposeInt("expiresInSeconds", {
      nullable: true,
      description: "The group's default self-destruct timer: members' SDKs apply it to every message they send",
    }),
    groupInfo: t.field({
      type: "Bytes",
      nullable: true,
      description: "The current MLSMessage(GroupInfo) with the ratchet tree: public, served to members and their own devices",
      resolve: (g, _args, ctx) => (ctx.actor ? ctx.services.groups.groupInfo(ctx.actor, g.id) : null),
    }),
  }),
});

const ClaimDeviceInput = builder.inputType("ClaimDeviceInput", {
  description: "One device whose key package is wanted",
  fields: (t) => ({
    userId: t.id({ required: true, validate: uuid, description: "the device's user" }),
    deviceId: t.int({ required: true, validate: z.number().int().min(1).max(999), description: "the device's id" }),
  }),
});

const GroupMember = builder.simpleObject("GroupMember", {
  description: "A user in a group (every active device of theirs is in its tree).",
  fields: (t) => ({
    userId: t.id({ description: "The member" }),
    role: t.field({ type: GroupRole, description: "Admin or member" }),
    joinedAt: t.field({ type: "DateTime", description: "When they were added" }),
  }),
});

export const GroupEvent = builder.objectRef<GroupEventPayload>("GroupEvent").implement({
  description: "Acknowledge with ackEnvelopes (or ackGroupEvents). Payloads are shaped before publishing: resolving reads nothing.",
  // Every member is handed the same result for one event (graphql/shared-results.ts): no field may read the context.
  extensions: CONTEXT_FREE,
  fields: (t) => ({
    id: t.exposeID("id", { description: "Acknowledge it with ackEnvelopes" }),
    groupId: t.exposeID("groupId", { description: "The group" }),
    seq: t.exposeInt("seq", { description: "the group's sequence number: one order for every member" }),
    kind: t.field({ type: GroupEventKind, description: "What it carries", resolve: (e) => e.kind }),
    epoch: t.exposeInt("epoch", { description: "The epoch it belongs to (a commit: the epoch it was framed at)" }),
    senderUserId: t.exposeID("senderUserId", { nullable: true, description: "Who sent it; null for server events" }),
    senderDeviceId: t.exposeInt("senderDeviceId", { nullable: true, description: "From which of their devices" }),
    serverTimestamp: t.field({
      type: "DateTime",
      description: "when the server stored the event",
      resolve: (e) => e.serverTimestamp,
    }),
    message: t.field({
      type: "Bytes",
      nullable: true,
      description: "the MLSMessage for COMMIT, WELCOME and APPLICATION",
      resolve: (e) => e.message,
    }),
    refersTo: t.exposeID("refersTo", { nullable: true, description: "MESSAGE_DELETED: the id of the message deleted for everyone" }),
  }),
});

const ClaimedKeyPackage = builder.simpleObject("ClaimedKeyPackage", {
  description: "A key package taken for adding one device to a group (spent: nobody else gets it).",
  fields: (t) => ({
    userId: t.id({ description: "The device's user" }),
    deviceId: t.int({ description: "The device" }),
    keyPackage: t.field({ type: "Bytes", description: "MLSMessage(KeyPackage), credential \"<userId>.<deviceId>\"" }),
  }),
});

const KeyPackageStatus = builder.simpleObject("KeyPackageStatus", {
  description: "The calling device's MLS key packages on the server.",
  fields: (t) => ({
    available: t.int({ description: "unclaimed key packages, the last-resort one not counted" }),
    hasLastResort: t.boolean({ description: "A last-resort package is stored (handed out when none other is left)" }),
    lowWaterMark: t.int({ description: "Below this many the device should upload more" }),
    isLow: t.boolean({ description: "upload more" }),
  }),
});

const CreateGroupInput = builder.inputType("CreateGroupInput", {
  description: "A group its creator made at epoch 0 (alone in it); members are added by the first commit.",
  fields: (t) => ({
    mlsGroupId: t.field({ type: "Bytes", required: true, description: "The MLS group id (unique)" }),
    name: t.string({ required: false, description: `At most ${MAX_GROUP_NAME} characters`, validate: shortText(MAX_GROUP_NAME).nullish() }),
    description: t.string({
      required: false,
      description: `At most ${MAX_GROUP_DESCRIPTION} characters`,
      validate: shortText(MAX_GROUP_DESCRIPTION).nullish(),
    }),
    groupInfo: t.field({
      type: "Bytes",
      required: false,
      description: "the epoch-0 GroupInfo with the ratchet tree, so the first commit's signature can be checked",
    }),
  }),
});

const GroupCommitInput = builder.inputType("GroupCommitInput", {
  description: "An MLS commit for the group's current epoch, with what the server needs to deliver it.",
  fields: (t) => ({
    groupId: t.id({ required: true, validate: uuid, description: "The group" }),
    commit: t.field({ type: "Bytes", required: true, description: "MLSMessage(PublicMessage(Commit))" }),
    welcome: t.field({ type: "Bytes", required: false, description: "MLSMessage(Welcome) for the added devices" }),
    groupInfo: t.field({ type: "Bytes", required: false, description: "MLSMessage(GroupInfo) of the new epoch with the ratchet tree; required" }),
    addUserIds: t.idList({ required: false, validate: userIdList.nullish(), description: "Users the commit adds (all their devices)" }),
    removeUserIds: t.idList({
      required: false,
      validate: userIdList.nullish(),
      description: "Users the commit removes (all their leaves)",
    }),
  }),
});

const UpdateGroupInput = builder.inputType("UpdateGroupInput", {
  description: "New name, description or default timer (what is left out stays).",
  fields: (t) => ({
    groupId: t.id({ required: true, validate: uuid, description: "The group" }),
    name: t.string({ required: false, description: "The new name", validate: shortText(MAX_GROUP_NAME).nullish() }),
    description: t.string({
      required: false,
      description: "The new description",
      validate: shortText(MAX_GROUP_DESCRIPTION).nullish(),
    }),
    expiresInSeconds: t.int({
      required: false,
      description: "Default self-destruct timer for messages sent in the group; 0 turns it off",
      validate: z.number().int().min(0).max(MAX_TIMER_SECONDS).nullish(),
    }),
  }),
});

const GroupReceipt = builder.simpleObject("GroupReceipt", {
  description: "One member's receipt of a group message",
  fields: (t) => ({ userId: t.id({ description: "the member" }), at: t.field({ type: "DateTime", description: "when" }) }),
});

const GroupMessageStatus = builder.simpleObject("GroupMessageStatus", {
  description: "Who has (a device acknowledged) and who read one of your group messages",
  fields: (t) => ({
    messageId: t.id({ description: "the group message id" }),
    deliveredTo: t.field({ type: [GroupReceipt], description: "members one of whose devices acknowledged it" }),
    readBy: t.field({ type: [GroupReceipt], description: "members who marked it read (with read receipts on)" }),
  }),
});

const GroupCommitPayload = builder.simpleObject("GroupCommitPayload", {
  description: "The commit was accepted.",
  fields: (t) => ({ epoch: t.int({ description: "The group's new epoch" }) }),
});

builder.queryFields((t) => ({
  group: t.withAuth({ device: true }).field({
    type: Group,
    nullable: true,
    description: "A group you are a member of; null otherwise.",
    args: { id: t.arg.id({ required: true, validate: uuid, description: "The group id" }) },
    resolve: (_root, { id }, ctx) => ctx.services.groups.get(ctx.actor, String(id)),
  }),
  myGroups: t.withAuth({ device: true }).field({
    type: [Group],
    description: "The groups you are a member of.",
    resolve: (_root, _args, ctx) => ctx.services.groups.mine(ctx.actor),
  }),
  groupMembers: t.withAuth({ device: true }).connection({
    type: GroupMember,
    description: "A group's members and their roles (members only).",
    args: { groupId: t.arg.id({ required: true, validate: uuid, description: "The group id" }) },
    resolve: (_root, args, ctx) =>
      resolveOffsetConnection({ args, defaultSize: 100, maxSize: 500 }, ({ offset, limit }) =>
        ctx.services.groups
          .members(ctx.actor, String(args.groupId), offset, limit)
          .then((rows) => rows.map((r) => ({ ...r, role: r.role === "admin" ? ("ADMIN" as const) : ("MEMBER" as const) }))),
      ),
  }),
  pendingGroupEvents: t.withAuth({ device: true }).field({
    type: [GroupEvent],
    description: "This device's unacknowledged events of one group, in order (what a client reads after STALE_EPOCH)",
    args: {
      groupId: t.arg.id({ required: true, validate: uuid, description: "The group id" }),
      first: t.arg.int({ required: false, validate: z.number().int().min(1).max(500).nullish(), description: "At most this many (default 500)" }),
      afterSeq: t.arg.int({
        required: false,
        description: "Only events after this sequence number (paging without acknowledging)",
        validate: z.number().int().min(0).nullish(),
      }),
    },
    resolve: (_root, { groupId, first, afterSeq }, ctx) =>
      ctx.services.groups.pending(ctx.actor, { groupId: String(groupId), limit: first ?? 500, afterSeq: BigInt(afterSeq ?? 0) }),
  }),
  groupMessageStatus: t.withAuth({ device: true }).field({
    type: GroupMessageStatus,
    description: "Delivery and read status of a group message you sent",
    args: { messageId: t.arg.id({ required: true, validate: groupMessageId, description: "A group message id (g:<group>:<seq>)" }) },
    resolve: (_root, { messageId }, ctx) => ctx.services.groups.messageStatus(ctx.actor, String(messageId)),
  }),
  keyPackageStatus: t.withAuth({ device: true }).field({
    type: KeyPackageStatus,
    description: "The calling device's key package count.",
    resolve: (_root, _args, ctx) => ctx.services.keyPackages.status(ctx.actor),
  }),
}));

builder.mutationFields((t) => ({
  uploadKeyPackages: t.withAuth({ device: true }).int({
    description: "Stores MLS key packages of this device (each an MLSMessage); returns how many were stored",
    args: {
      keyPackages: t.arg({
        type: ["Bytes"],
        required: true,
        description: `MLSMessage(KeyPackage)s, at most ${MAX_KEY_PACKAGES_PER_UPLOAD}`,
        validate: boundedList(MAX_KEY_PACKAGES_PER_UPLOAD),
      }),
      lastResort: t.arg({ type: "Bytes", required: false, description: "A last-resort key package (replaces the stored one)" }),
    },
    resolve: (_root, { keyPackages, lastResort }, ctx) => ctx.services.keyPackages.upload(ctx.actor, keyPackages, lastResort),
  }),
  claimKeyPackages: t.withAuth({ device: true }).field({
    type: [ClaimedKeyPackage],
    description: "One key package per active device of each user. A mutation: it consumes them.",
    args: {
      userIds: t.arg.idList({ required: true, validate: userIdList.min(1), description: `Users to add, at most ${MAX_USERS_PER_CALL}` }),
      devices: t.arg({
        type: [ClaimDeviceInput],
        required: false,
        description: "Only these devices of those users (a member's newly linked device)",
        validate: boundedList(MAX_USERS_PER_CALL).nullish(),
      }),
    },
    resolve: (_root, { userIds, devices }, ctx) =>
      ctx.services.keyPackages.claim(
        ctx.actor,
        userIds.map(String),
        devices?.map((d) => ({ userId: String(d.userId), deviceId: d.deviceId })),
      ),
  }),
  createGroup: t.withAuth({ device: true }).field({
    type: Group,
    description: "Registers a group you created (epoch 0, you its admin).",
    args: { input: t.arg({ type: CreateGroupInput, required: true, description: "The group's MLS id, name and description" }) },
    resolve: (_root, { input }, ctx) => ctx.services.groups.create(ctx.actor, input),
  }),
  commitGroup: t.withAuth({ device: true }).field({
    type: GroupCommitPayload,
    description: "Delivers a commit (and its welcome) if it is for the current epoch and its changes are allowed; else STALE_EPOCH.",
    args: { input: t.arg({ type: GroupCommitInput, required: true, description: "The commit and its roster changes" }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.groups.commit(ctx.actor, {
        ...input,
        groupId: String(input.groupId),
        addUserIds: input.addUserIds?.map(String),
        removeUserIds: input.removeUserIds?.map(String),
      }),
  }),
  sendGroupMessage: t.withAuth({ device: true }).field({
    type: SendMessagePayload,
    description: "Stores an MLS application message once for the group and delivers it to every member device.",
    args: {
      groupId: t.arg.id({ required: true, validate: uuid, description: "The group" }),
      message: t.arg({ type: "Bytes", required: true, description: "MLSMessage(PrivateMessage) of the current epoch" }),
    },
    resolve: (_root, { groupId, message }, ctx) => ctx.services.groups.send(ctx.actor, String(groupId), message),
  }),
  updateGroup: t.withAuth({ device: true }).field({
    type: Group,
    description: "Admins only: name and description",
    args: { input: t.arg({ type: UpdateGroupInput, required: true, description: "What changes" }) },
    resolve: (_root, { input }, ctx) => ctx.services.groups.update(ctx.actor, String(input.groupId), input),
  }),
  setGroupRole: t.withAuth({ device: true }).boolean({
    description: "Admins only: makes a member an admin or a member (the last admin cannot step down).",
    args: {
      groupId: t.arg.id({ required: true, validate: uuid, description: "The group" }),
      userId: t.arg.id({ required: true, validate: uuid, description: "The member" }),
      role: t.arg({ type: GroupRole, required: true, description: "Their new role" }),
    },
    resolve: (_root, a, ctx) =>
      ctx.services.groups.setRole(ctx.actor, String(a.groupId), String(a.userId), a.role === "ADMIN" ? "admin" : "member"),
  }),
  leaveGroup: t.withAuth({ device: true }).boolean({
    description: "Leaves the group (the last admin leaving makes the longest-standing member admin).",
    args: { groupId: t.arg.id({ required: true, validate: uuid, description: "The group" }) },
    resolve: (_root, { groupId }, ctx) => ctx.services.groups.leave(ctx.actor, String(groupId)),
  }),
  markGroupRead: t.withAuth({ device: true }).int({
    description: "Marks group messages read and tells their senders; 0 when your read receipts are off",
    args: {
      messageIds: t.arg.idList({
        required: true,
        validate: z.array(groupMessageId).max(MAX_GROUP_RECEIPT_IDS),
        description: `Group message ids, at most ${MAX_GROUP_RECEIPT_IDS}`,
      }),
    },
    resolve: async (_root, { messageIds }, ctx) =>
      (await ctx.services.messages.readReceiptsEnabled(ctx.actor.userId)) ? ctx.services.groups.markRead(ctx.actor, messageIds.map(String)) : 0,
  }),
  deleteGroupMessage: t.withAuth({ device: true }).boolean({
    description: "forEveryone: the sender, within the deletion window, removes it for every member device",
    args: {
      messageId: t.arg.id({ required: true, validate: groupMessageId, description: "A group message id" }),
      forEveryone: t.arg.boolean({ required: true, description: "Delete for every member, not just your devices" }),
    },
    resolve: (_root, { messageId, forEveryone }, ctx) => ctx.services.groups.deleteMessage(ctx.actor, String(messageId), forEveryone),
  }),
  ackGroupEvents: t.withAuth({ device: true }).int({
    description: "Acknowledges group events (ackEnvelopes does the same for ids of any kind). BAD_USER_INPUT for an id that is not a group event id.",
    // Bounded and parsed by the acknowledgement itself (acks.ts), which ackEnvelopes routes group ids to as well; not
    // the validation plugin, which copied the arguments of a call every member device makes for every message.
    args: { ids: t.arg.idList({ required: true, description: `Group event ids, at most ${MAX_GROUP_ACK_IDS}` }) },
    resolve: (_root, { ids }, ctx) => ctx.services.groups.ack(ctx.actor, ids.map(String)),
  }),
}));

builder.subscriptionFields((t) => ({
  groupEvents: t.withAuth({ device: true }).field({
    type: GroupEvent,
    description: "This device's group events: unacknowledged ones first, then live, in each group's order",
    subscribe: (_root, _args, ctx) => ctx.services.groups.subscribe(ctx.actor, ctx.dropSlowConsumer),
    resolve: (e) => e,
  }),
}));
