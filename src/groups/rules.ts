// The rules of MLS groups as pure functions: input bounds, commit acceptance (epoch, sender leaf, roles, removed
// and added devices, claimed key packages, the new tree), roster arithmetic and the numbering of a commit's events.
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

/**
 * Roster arithmetic under the group's lock: admins add and remove; anyone may commit the removal of devices whose
 * users already left; the group stays within its size; the Remove proposals remove exactly the leaves of the
 * removed users. Returns the members removed and the device keys leaving the tree.
 */
export function checkRosterChange(p: {
  role: GroupRole;
  roster: Map<string, GroupRole>;
  inTree: DeviceRef[];
  addUserIds: string[];
  removeUserIds: string[];
  removedDevices: DeviceRef[];
  maxMembers: number;
}): { removesMembers: string[]; wantRemoved: Set<string> } {
  const { roster, inTree, addUserIds, removeUserIds } = p;
  const removesMembers = removeUserIds.filter((u) => roster.has(u));
  if ((addUserIds.length || removesMembers.length) && p.role !== "admin") {
    throw forbidden("only an admin adds or removes members");
  }
  for (const u of addUserIds) if (roster.has(u)) throw badInput(`user ${u} is already a member`);
  for (const u of removeUserIds) {
    if (!roster.has(u) && !inTree.some((d) => d.userId === u)) throw badInput(`user ${u} is not in the group`);
  }
  const size = roster.size + addUserIds.length - removesMembers.length;
  if (size > p.maxMembers) {
    throw new AppError("LIMIT_EXCEEDED", `a group holds at most ${p.maxMembers} members`, { maxMembers: p.maxMembers });
  }
  const wantRemoved = new Set(inTree.filter((d) => removeUserIds.includes(d.userId)).map(deviceKey));
  if (!sameSet(wantRemoved, new Set(p.removedDevices.map(deviceKey)))) {
    throw badInput("the Remove proposals must remove exactly the devices of removeUserIds");
  }
  return { removesMembers, wantRemoved };
}

/** The Add proposals add exactly one key package for each active device of each added user. Returns their keys. */
export function checkAddedDevices(activeAdded: DeviceRef[], addedDevices: DeviceRef[]): string[] {
  const gotAdded = addedDevices.map(deviceKey);
  if (gotAdded.length !== new Set(gotAdded).size || !sameSet(new Set(activeAdded.map(deviceKey)), new Set(gotAdded))) {
    throw badInput("the Add proposals must add exactly one key package for each active device of addUserIds");
  }
  return gotAdded;
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
