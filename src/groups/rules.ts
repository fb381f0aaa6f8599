// The rules of MLS groups as pure functions: input bounds, commit acceptance (epoch, sender leaf, roles, removed
// and added devices, claimed key packages, the new tree), roster arithmetic and the numbering of a commit's events.
// Users join and leave as a whole (every active device); single devices come and go when a member links a device or
// deactivates one.
import { AppError, badInput, forbidden } from "../errors.ts";
import type { Actor } from "../deps.ts";
import { deviceKey, sameBytes, type DeviceRef, type ParsedCommit } from "./mls-framing.ts";

export const MAX_GROUP_NAME = 128;
export const MAX_GROUP_DESCRIPTION = 1024;
export const MAX_MLS_GROUP_ID = 255;

export type GroupRole = "admin" | "member";

export interface GroupInfoView {
  id: string;
  mlsGroupId: Uint8Array;
  epoch: number;
  name: string | null;
  description: string | null;
  memberCount: number;
  expiresInSeconds: number | null;
}

export interface CommitInput {
  groupId: string;
  commit: Uint8Array;
  welcome?: Uint8Array | null;
  groupInfo?: Uint8Array | null;
  addUserIds?: string[] | null;
  removeUserIds?: string[] | null;
}

/** What the rules need of a GroupInfo: its group, epoch and occupied leaves. */
export interface TreeView {
  groupId: Uint8Array;
  epoch: bigint;
  leaves: Map<number, DeviceRef>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isGroupId = (id: string) => UUID.test(id);

export function staleEpoch(epoch: number) {
  return new AppError("STALE_EPOCH", `the group is at epoch ${epoch}: process the missed commits and retry`, { epoch });
}

export const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));

export function checkText(name?: string | null, description?: string | null): void {
  if (name != null && name.length > MAX_GROUP_NAME) throw badInput(`name must be at most ${MAX_GROUP_NAME} characters`);
  if (description != null && description.length > MAX_GROUP_DESCRIPTION) {
    throw badInput(`description must be at most ${MAX_GROUP_DESCRIPTION} characters`);
  }
}

export function checkMlsGroupId(id: Uint8Array): void {
  if (id.length < 1 || id.length > MAX_MLS_GROUP_ID) throw badInput(`mlsGroupId must be 1 to ${MAX_MLS_GROUP_ID} bytes`);
}

/** A new group's GroupInfo: its group, epoch 0, and the creating device as its only leaf. */
export function checkInitialTree(tree: TreeView, mlsGroupId: Uint8Array, creator: Actor): void {
  if (!sameBytes(tree.groupId, mlsGroupId)) throw badInput("groupInfo is for another group");
  if (tree.epoch !== 0n) throw badInput("groupInfo must be of epoch 0");
  const leaves = [...tree.leaves.values()].map(deviceKey);
  if (leaves.length !== 1 || leaves[0] !== deviceKey(creator)) throw badInput("groupInfo: the only leaf must be this device");
}

/** A commit is accepted only at the group's current epoch, framed for it, with the next epoch's GroupInfo. */
export function checkCommitEpoch(commit: { groupId: Uint8Array; epoch: bigint }, group: { mlsGroupId: Uint8Array; epoch: number }): void {
  if (!sameBytes(commit.groupId, group.mlsGroupId)) throw badInput("commit is framed for another group");
  if (commit.epoch < BigInt(group.epoch)) throw staleEpoch(group.epoch);
  if (commit.epoch > BigInt(group.epoch)) throw badInput(`commit is framed at epoch ${commit.epoch}, the group is at ${group.epoch}`);
}

export function checkNextGroupInfo(next: TreeView, group: { mlsGroupId: Uint8Array; epoch: number }): void {
  if (!sameBytes(next.groupId, group.mlsGroupId)) throw badInput("groupInfo is for another group");
  if (next.epoch !== BigInt(group.epoch + 1)) throw badInput(`groupInfo must be of epoch ${group.epoch + 1}`);
}

/** The sender's leaf, in the tree of the epoch the commit was framed in (the new tree for a group's first commit). */
export function checkCommitSender(commit: { senderLeaf: number }, previous: TreeView | null, next: TreeView, actor: Actor): void {
  const sender = (previous ?? next).leaves.get(commit.senderLeaf);
  if (!sender || deviceKey(sender) !== deviceKey(actor)) throw forbidden("the commit's sender leaf is not this device");
}

/** Without a stored tree only the creator's first commit can be checked (against the tree it brings). */
export function checkWithoutStoredTree(commit: { senderLeaf: number }, epoch: number): void {
  if (epoch !== 0 || commit.senderLeaf !== 0) throw badInput("the group has no stored tree");
}

/** The devices the Remove proposals remove, from the previous tree. */
export function removedDevicesOf(removedLeaves: number[], previous: TreeView | null): DeviceRef[] {
  return removedLeaves.map((leaf) => {
    const d = previous?.leaves.get(leaf);
    if (!d) throw badInput(`commit removes leaf ${leaf}, which is empty`);
    return d;
  });
}

/** The devices the Add proposals add (their key packages' credentials), and the welcome that must come with them. */
export function addedDevicesOf(added: ParsedCommit["addedKeyPackages"], hasWelcome: boolean): DeviceRef[] {
  const devices = added.map((a, i) => {
    if (!a.device) throw badInput(`Add proposal ${i}: the key package credential names no device`);
    return a.device;
  });
  if (hasWelcome && devices.length === 0) throw badInput("a welcome was sent with a commit that adds nobody");
  if (devices.length > 0 && !hasWelcome) throw badInput("a commit that adds members needs their welcome");
  return devices;
}

/** The users a commit adds and removes, de-duplicated; a committer cannot remove itself. */
export function userChanges(input: Pick<CommitInput, "addUserIds" | "removeUserIds">, actor: Actor) {
  const addUserIds = [...new Set(input.addUserIds ?? [])];
  const removeUserIds = [...new Set(input.removeUserIds ?? [])];
  if (addUserIds.some((u) => removeUserIds.includes(u))) throw badInput("a user cannot be added and removed at once");
  if (removeUserIds.includes(actor.userId)) throw badInput("a member cannot commit its own removal; use leaveGroup");
  return { addUserIds, removeUserIds };
}

export interface RosterChange {
  actor: DeviceRef;
  /** userId -> role, before the commit. */
  roster: Map<string, GroupRole>;
  /** Devices whose leaves are in the tree before the commit. */
  inTree: DeviceRef[];
  /** Active device ids of every user the commit touches. */
  active: Map<string, Set<number>>;
  addUserIds: string[];
  removeUserIds: string[];
  /** Devices the Add proposals carry, and those whose leaves the Remove proposals empty. */
  added: DeviceRef[];
  removed: DeviceRef[];
  maxMembers: number;
}

/** Throws the client's mistake (BAD_USER_INPUT, FORBIDDEN, LIMIT_EXCEEDED); returns the members removed. */
export function checkRosterChange(c: RosterChange): { removesMembers: string[]; wantRemoved: Set<string>; gotAdded: string[] } {
  const addUsers = new Set(c.addUserIds);
  const removeUsers = new Set(c.removeUserIds);
  const role = c.roster.get(c.actor.userId);
  if (!role) throw forbidden("not a member");
  if ([...addUsers].some((u) => removeUsers.has(u))) throw badInput("a user cannot be added and removed at once");
  if (removeUsers.has(c.actor.userId)) throw badInput("a member cannot commit its own removal; use leaveGroup");

  const removedMembers = [...removeUsers].filter((u) => c.roster.has(u));
  if ((addUsers.size || removedMembers.length) && role !== "admin") throw forbidden("only an admin adds or removes members");
  for (const u of addUsers) if (c.roster.has(u)) throw badInput(`user ${u} is already a member`);
  for (const u of removeUsers) {
    if (!c.roster.has(u) && !c.inTree.some((d) => d.userId === u)) throw badInput(`user ${u} is not in the group`);
  }
  const size = c.roster.size + addUsers.size - removedMembers.length;
  if (size > c.maxMembers) {
    throw new AppError("LIMIT_EXCEEDED", `a group holds at most ${c.maxMembers} members`, { maxMembers: c.maxMembers });
  }
  const isActive = (d: DeviceRef) => c.active.get(d.userId)?.has(d.deviceId) ?? false;

  // Removals: all of a removed user's leaves; besides those, only leaves of users who left or of deactivated devices.
  const removed = new Set(c.removed.map(deviceKey));
  if (removed.size !== c.removed.length) throw badInput("a device is removed twice");
  for (const d of c.inTree) {
    if (removeUsers.has(d.userId) && !removed.has(deviceKey(d))) throw badInput(`the commit must remove every device of user ${d.userId}`);
  }
  for (const d of c.removed) {
    if (removeUsers.has(d.userId)) continue;
    if (c.roster.has(d.userId) && isActive(d)) {
      throw badInput(`device ${deviceKey(d)} is an active device of a member; remove the user instead`);
    }
  }

  // Additions: every active device of an added user; besides those, new active devices of members, added by an admin
  // or by the member itself (its existing device adds the one it just linked).
  const added = new Set(c.added.map(deviceKey));
  if (added.size !== c.added.length) throw badInput("the Add proposals add a device twice");
  const inTree = new Set(c.inTree.map(deviceKey));
  for (const u of addUsers) {
    for (const id of c.active.get(u) ?? []) {
      if (!added.has(`${u}.${id}`)) throw badInput("the Add proposals must add exactly one key package for each active device of addUserIds");
    }
  }
  for (const d of c.added) {
    if (!isActive(d)) throw badInput(`device ${deviceKey(d)} is not an active device`);
    if (addUsers.has(d.userId)) continue;
    if (!c.roster.has(d.userId) || removeUsers.has(d.userId)) {
      throw badInput("the Add proposals must add exactly one key package for each active device of addUserIds");
    }
    if (inTree.has(deviceKey(d)) && !removed.has(deviceKey(d))) throw badInput(`device ${deviceKey(d)} is in the group already`);
    if (role !== "admin" && d.userId !== c.actor.userId) throw forbidden("only an admin or the member itself adds a member's device");
  }
  return { removesMembers: removedMembers, wantRemoved: removed, gotAdded: c.added.map(deviceKey) };
}

/** Each added key package was claimed by the committer (through claimKeyPackages) for the device it names. */
export function checkClaimedKeyPackages(
  added: ParsedCommit["addedKeyPackages"],
  claims: { ref: Uint8Array; user_id: string; device_id: number }[],
): void {
  const claimed = new Map(claims.map((c) => [Buffer.from(c.ref).toString("hex"), `${c.user_id}.${c.device_id}`]));
  added.forEach((a, i) => {
    if (claimed.get(Buffer.from(a.ref).toString("hex")) !== deviceKey(a.device!)) {
      throw badInput(`Add proposal ${i} carries a key package that was not claimed through claimKeyPackages`);
    }
  });
}

/** The new tree holds exactly the devices the roster says: nobody slipped in or out unannounced. */
export function checkNextTree(treeNow: Set<string>, wantRemoved: Set<string>, gotAdded: string[], next: TreeView): void {
  const expected = new Set([...treeNow].filter((k) => !wantRemoved.has(k)).concat(gotAdded));
  if (!sameSet(expected, new Set([...next.leaves.values()].map(deviceKey)))) {
    throw badInput("groupInfo's ratchet tree does not match the group's devices after this commit");
  }
}

/** The sequence numbers of an accepted commit's events: the commit, its welcome, and a roster change. */
export function commitSeqs(lastSeq: bigint, hasWelcome: boolean, changesMembers: boolean) {
  let seq = lastSeq;
  const commitSeq = ++seq;
  const welcomeSeq = hasWelcome ? ++seq : null;
  const membersSeq = changesMembers ? ++seq : null;
  return { commitSeq, welcomeSeq, membersSeq, lastSeq: seq };
}

/** An application message's epoch as stored (the framing allows 64 bits; a group's epoch fits 31). */
export const storedEpoch = (epoch: bigint) => (epoch > 0x7fffffffn ? 0x7fffffff : Number(epoch));

/** Only the sender deletes a message for everyone, and only within the window. */
export function checkDeleteForEveryone(m: { senderUserId: string | null; createdAt: Date }, actor: Actor, windowSeconds: number, now = Date.now()): void {
  if (m.senderUserId !== actor.userId) throw forbidden("only the sender can delete a message for everyone");
  if (now - m.createdAt.getTime() > windowSeconds * 1000) {
    throw forbidden(`a message can be deleted for everyone only within ${windowSeconds} s`);
  }
}
