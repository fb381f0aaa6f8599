// client.groups: MLS groups as an app uses them. Members are named by username or user id and every active device of
// every member is in the group: the SDK adds its own account's newly linked devices (the existing device that made
// the link token is online by construction) and any member's SDK removes leaves of deactivated devices and of users
// who left. Group events arrive through the client's inbox pipeline and are handed to the app at least once
// (group-inbox.ts).
import type { Proposal } from "ts-mls";
import { decodeMlsMessage } from "ts-mls";
import { encodeContent, type ActionBody, type Content, type MessageBody, type Sendable } from "./content.ts";
import {
  ClaimKeyPackagesDocument,
  DeleteGroupMessageDocument,
  DevicesDocument,
  GroupDocument,
  GroupMessageStatusDocument,
  MarkGroupReadDocument,
  GroupMembersDocument,
  MyGroupsDocument,
  SetGroupRoleDocument,
  UpdateGroupDocument,
} from "./generated/graphql.ts";
import { expiry, GroupInbox, type GroupsHost } from "./group-inbox.ts";
import { MlsGroupManager, type GroupEventData } from "./mls/groups.ts";
import { unb64 } from "./base64.ts";
import type { MessageRecord, StoredMessage } from "./message-store.ts";
import { VignetteError, wrap } from "./errors.ts";

/** Key packages a device keeps on the server (one is claimed per group that adds it). */
export const KEY_PACKAGE_TARGET = 20;

export interface GroupSummary {
  id: string;
  name: string | null;
  description: string | null;
  epoch: number;
  memberCount: number;
  /** Default self-destruct timer of the group (seconds), applied to every message sent there. */
  expiresInSeconds: number | null;
}

export interface GroupMessageStatus {
  messageId: string;
  deliveredTo: { userId: string; at: string }[];
  readBy: { userId: string; at: string }[];
}

export interface GroupMemberInfo {
  userId: string;
  role: "admin" | "member";
  joinedAt: string;
}

export type { GroupChangedEvent, GroupChangeKind, GroupEvents, GroupsHost, ReceivedGroupMessage } from "./group-inbox.ts";

export class Groups {
  readonly mls: MlsGroupManager;
  private readonly timers = new Map<string, number | null>();
  private readonly inbox: GroupInbox;

  constructor(private readonly host: GroupsHost) {
    this.mls = new MlsGroupManager(host.kv, host.http, host.self, {
      ackOnSync: false,
      onProcessed: (u) => this.inbox.record(u),
    });
    this.inbox = new GroupInbox(host, this.mls, {
      get: (groupId) => this.get(groupId),
      infoChanged: (groupId) => void this.timers.delete(groupId),
      removeDeparted: (groupId) => this.removeDeparted(groupId),
    });
  }

  /** One group event from the inbox (see GroupInbox). */
  handle(event: GroupEventData): Promise<void> {
    return this.inbox.handle(event);
  }

  // ---- the app's calls ---------------------------------------------------------------------------------------

  /** Creates a group with these members (usernames or user ids); this account's other devices join it too. */
  async create(opts: { name: string; description?: string; members?: string[] }): Promise<GroupSummary> {
    const members = await this.resolveAll(opts.members ?? []);
    const id = await wrap(() => this.mls.createGroup({ name: opts.name, description: opts.description }));
    await this.changeMembers(id, members.filter((u) => u !== this.host.self.userId), true);
    return (await this.get(id))!;
  }

  /** Adds users (every active device of each). */
  async add(groupId: string, who: string[]): Promise<number> {
    return this.changeMembers(groupId, await this.resolveAll(who), false);
  }

  /** Removes users (every leaf of each). */
  async remove(groupId: string, who: string[]): Promise<number> {
    const userIds = await this.resolveAll(who);
    return wrap(() => this.mls.remove(groupId, userIds));
  }

  /** Leaves: delivery to this account's devices stops at once; a remaining member's next commit removes their leaves. */
  async leave(groupId: string): Promise<void> {
    await wrap(() => this.mls.leave(groupId));
  }

  /** Encrypts any Sendable for the group and stores it locally; returns the server's id and timestamp. */
  async send(groupId: string, message: Sendable, opts: { expiresInSeconds?: number } = {}) {
    const body: MessageBody = typeof message === "string" ? { kind: "text", text: message } : message;
    if (opts.expiresInSeconds === undefined) opts = { expiresInSeconds: (await this.defaultTimer(groupId)) ?? undefined };
    const sentAt = Date.now();
    const r = await this.post(groupId, { sentAt, body, ...(opts.expiresInSeconds ? { expiresInSeconds: opts.expiresInSeconds } : {}) });
    const stored: MessageRecord = {
      messageId: r.messageId,
      conversationId: groupId,
      peerUserId: groupId,
      groupId,
      direction: "out",
      from: this.host.self,
      sentAt,
      serverTimestamp: r.serverTimestamp,
      body,
      expiresAt: expiry(r.serverTimestamp, opts.expiresInSeconds),
    };
    await this.host.store.put(stored);
    this.host.stored(stored);
    return { messageId: r.messageId, serverTimestamp: r.serverTimestamp, sentAt };
  }

  /** Sends a reaction, edit, vote or RSVP on a group message (client.react and the like, which fold it in here). */
  async postAction(groupId: string, body: ActionBody) {
    const sentAt = Date.now();
    return { ...(await this.post(groupId, { sentAt, body })), sentAt };
  }

  private async post(groupId: string, content: Omit<Content, "v">) {
    // Added while this device was not listening: its welcome is still queued.
    if (!(await this.mls.state(groupId))) await wrap(() => this.mls.sync(groupId));
    return wrap(() => this.mls.post(groupId, encodeContent(content)));
  }

  async list(): Promise<GroupSummary[]> {
    const { myGroups } = await wrap(() => this.host.http.request(MyGroupsDocument));
    return myGroups.map(summary);
  }

  async get(groupId: string): Promise<GroupSummary | null> {
    const { group: g } = await wrap(() => this.host.http.request(GroupDocument, { id: groupId }));
    if (g) this.timers.set(g.id, g.expiresInSeconds ?? null);
    return g ? summary(g) : null;
  }

  private async defaultTimer(groupId: string): Promise<number | null> {
    if (!this.timers.has(groupId)) await this.get(groupId);
    return this.timers.get(groupId) ?? null;
  }

  /** Sets the group's default self-destruct timer (0 or null: none); every member's SDK applies it when sending. */
  async setTimer(groupId: string, seconds: number | null): Promise<GroupSummary> {
    return this.update(groupId, { expiresInSeconds: seconds ?? 0 });
  }

  /** Read receipts to the senders of these group messages (if this account sends read receipts). */
  async markRead(messageIds: string[]): Promise<number> {
    return wrap(async () => (await this.host.http.request(MarkGroupReadDocument, { messageIds })).markGroupRead);
  }

  /** Deletes here; with forEveryone (the sender, within the window) from every member device too. */
  async deleteMessage(messageId: string, forEveryone: boolean): Promise<boolean> {
    const ok = await wrap(async () => (await this.host.http.request(DeleteGroupMessageDocument, { messageId, forEveryone })).deleteGroupMessage);
    await this.host.store.remove(messageId);
    this.host.unstored(messageId);
    return ok;
  }

  /** Which members have, and which read, a message this account sent. */
  async status(messageId: string): Promise<GroupMessageStatus> {
    const { groupMessageStatus: s } = await wrap(() => this.host.http.request(GroupMessageStatusDocument, { messageId }));
    return { messageId: s.messageId, deliveredTo: s.deliveredTo.map(receipt), readBy: s.readBy.map(receipt) };
  }

  /** Members with their roles, in joining order. */
  async members(groupId: string): Promise<GroupMemberInfo[]> {
    const out: GroupMemberInfo[] = [];
    let after: string | null = null;
    for (;;) {
      const { groupMembers }: { groupMembers: { edges: { node: { userId: string; role: string; joinedAt?: string } }[]; pageInfo: { hasNextPage: boolean; endCursor?: string | null } } } =
        await wrap(() => this.host.http.request(GroupMembersDocument, { groupId, first: 500, after }));
      for (const e of groupMembers.edges) {
        out.push({ userId: e.node.userId, role: e.node.role === "ADMIN" ? "admin" : "member", joinedAt: e.node.joinedAt ?? "" });
      }
      if (!groupMembers.pageInfo.hasNextPage) return out;
      after = groupMembers.pageInfo.endCursor ?? null;
    }
  }

  async setRole(groupId: string, who: string, role: "admin" | "member"): Promise<boolean> {
    const userId = await this.host.resolveUser(who);
    return wrap(async () => (await this.host.http.request(SetGroupRoleDocument, { groupId, userId, role: role === "admin" ? "ADMIN" : "MEMBER" })).setGroupRole);
  }

  async update(groupId: string, info: { name?: string; description?: string; expiresInSeconds?: number }): Promise<GroupSummary> {
    const { updateGroup: g } = await wrap(() => this.host.http.request(UpdateGroupDocument, { input: { groupId, ...info } }));
    this.timers.set(g.id, g.expiresInSeconds ?? null);
    return summary(g);
  }

  /** A group of this account by id or by (unique) name. */
  async find(idOrName: string): Promise<GroupSummary> {
    const all = await this.list();
    const hits = all.filter((g) => g.id === idOrName.toLowerCase() || g.name === idOrName);
    if (hits.length === 1) return hits[0];
    throw new VignetteError(hits.length ? `more than one group is named ${idOrName}: use its id` : `no group ${idOrName}`, hits.length ? "CONFLICT" : "NOT_FOUND");
  }

  /** Local messages of a group, oldest first. */
  async messages(groupId: string): Promise<StoredMessage[]> {
    return this.host.store.list(groupId);
  }

  // ---- membership upkeep -------------------------------------------------------------------------------------

  private async resolveAll(who: string[]): Promise<string[]> {
    return [...new Set(await Promise.all(who.map((w) => this.host.resolveUser(w))))];
  }

  private async activeDevices(userId: string): Promise<number[]> {
    const { devices } = await wrap(() => this.host.http.request(DevicesDocument, { userId }));
    return devices.map((d) => d.deviceId);
  }

  /**
   * One commit that adds `userIds` (all their devices) and brings the tree in line with the device lists of
   * `reconcile` users (own new devices added, deactivated devices removed). Key packages are claimed once per device
   * and reused when the commit is rebuilt on a newer epoch.
   */
  private async changeMembers(groupId: string, userIds: string[], withOwnDevices: boolean, reconcile: string[] = []): Promise<number> {
    const claimed = new Map<string, Proposal>();
    const me = this.host.self.userId;
    const check = [...new Set([...(withOwnDevices ? [me] : []), ...reconcile])];
    return wrap(() =>
      this.mls.commit(groupId, async () => {
        const leaves = await this.mls.members(groupId);
        const present = new Set(leaves.values());
        const users = (k: string) => k.split(".")[0];
        const addUsers = userIds.filter((u) => ![...present].some((k) => users(k) === u));
        const proposals: Proposal[] = [];
        const extra: { userId: string; deviceId: number }[] = [];
        for (const u of check) {
          const active = new Set(await this.activeDevices(u));
          for (const [leaf, k] of leaves) if (users(k) === u && !active.has(Number(k.split(".")[1]))) proposals.push({ proposalType: "remove", remove: { removed: leaf } });
          if (u === me) for (const d of active) if (!present.has(`${u}.${d}`)) extra.push({ userId: u, deviceId: d });
        }
        const unclaimedUsers = addUsers.filter((u) => ![...claimed.keys()].some((k) => users(k) === u));
        const unclaimedDevices = extra.filter((d) => !claimed.has(`${d.userId}.${d.deviceId}`));
        if (unclaimedUsers.length) await this.claim(claimed, unclaimedUsers);
        if (unclaimedDevices.length) {
          // A just-linked device may not have published key packages yet; it is added when it has (the server tells).
          await this.claim(claimed, [...new Set(unclaimedDevices.map((d) => d.userId))], unclaimedDevices).catch((err) => {
            if ((err as { code?: string }).code !== "NOT_FOUND") throw err;
          });
        }
        const wanted = new Set([...extra.map((d) => `${d.userId}.${d.deviceId}`)]);
        for (const [k, p] of claimed) if (addUsers.includes(users(k)) || wanted.has(k)) proposals.push(p);
        return proposals.length ? { proposals, addUserIds: addUsers } : null;
      }),
    );
  }

  private async claim(into: Map<string, Proposal>, userIds: string[], devices?: { userId: string; deviceId: number }[]) {
    const { claimKeyPackages } = await this.host.http.request(ClaimKeyPackagesDocument, { userIds, devices: devices ?? null });
    for (const c of claimKeyPackages) {
      const m = decodeMlsMessage(unb64(c.keyPackage), 0)?.[0];
      if (!m || m.wireformat !== "mls_key_package") throw new VignetteError("the server handed out something that is not a key package");
      into.set(`${c.userId}.${c.deviceId}`, { proposalType: "add", add: { keyPackage: m.keyPackage } });
    }
  }

  /** A user's device list changed: bring every group this device shares with them in line. */
  async deviceListChanged(userId: string): Promise<void> {
    for (const groupId of await this.mls.groupIds()) {
      const leaves = await this.mls.members(groupId).catch(() => new Map<number, string>());
      const involved = userId === this.host.self.userId || [...leaves.values()].some((k) => k.startsWith(`${userId}.`));
      if (involved) await this.changeMembers(groupId, [], false, [userId]);
    }
  }

  /** At start: this account's own devices, in every group this device is in. */
  async reconcileOwnDevices(): Promise<void> {
    await this.deviceListChanged(this.host.self.userId);
  }

  /** Someone left (or changed roles): remove the leaves of users no longer on the roster. */
  private async removeDeparted(groupId: string): Promise<void> {
    const roster = new Set((await this.members(groupId)).map((m) => m.userId));
    const leaves = await this.mls.members(groupId);
    const gone = [...new Set([...leaves.values()].map((k) => k.split(".")[0]))].filter((u) => !roster.has(u));
    if (!gone.length) return;
    await this.mls.commit(groupId, async () => {
      const now = await this.mls.members(groupId);
      const proposals: Proposal[] = [...now].filter(([, k]) => gone.includes(k.split(".")[0])).map(([leaf]) => ({ proposalType: "remove", remove: { removed: leaf } }));
      const still = [...new Set([...now.values()].map((k) => k.split(".")[0]))].filter((u) => gone.includes(u));
      return proposals.length ? { proposals, removeUserIds: still } : null;
    });
  }
}

function summary(g: { id: string; name?: string | null; description?: string | null; epoch: number; memberCount: number; expiresInSeconds?: number | null }): GroupSummary {
  return { id: g.id, name: g.name ?? null, description: g.description ?? null, epoch: g.epoch, memberCount: g.memberCount, expiresInSeconds: g.expiresInSeconds ?? null };
}

const receipt = (r: { userId: string; at: string }) => ({ userId: r.userId, at: String(r.at) });

