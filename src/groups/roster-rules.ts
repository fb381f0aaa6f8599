// Pure rules for a commit's roster change: which devices a commit may add or remove, checked against the group's
// roster, its devices in the tree and each user's active device list. Users join and leave as a whole (every active
// device); single devices come and go when a member links a device or deactivates one.
import { AppError, badInput, forbidden } from "../errors.ts";

export type GroupRole = "admin" | "member";

export interface DeviceRef {
  userId: string;
  deviceId: number;
}

const key = (d: DeviceRef) => `${d.userId}.${d.deviceId}`;

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
export function checkRosterChange(c: RosterChange): { removedMembers: string[] } {
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
  const removed = new Set(c.removed.map(key));
  if (removed.size !== c.removed.length) throw badInput("a device is removed twice");
  for (const d of c.inTree) {
    if (removeUsers.has(d.userId) && !removed.has(key(d))) throw badInput(`the commit must remove every device of user ${d.userId}`);
  }
  for (const d of c.removed) {
    if (removeUsers.has(d.userId)) continue;
    if (c.roster.has(d.userId) && isActive(d)) {
      throw badInput(`device ${key(d)} is an active device of a member; remove the user instead`);
    }
  }

  // Additions: every active device of an added user; besides those, new active devices of members, added by an admin
  // or by the member itself (its existing device adds the one it just linked).
  const added = new Set(c.added.map(key));
  if (added.size !== c.added.length) throw badInput("the Add proposals add a device twice");
  const inTree = new Set(c.inTree.map(key));
  for (const u of addUsers) {
    for (const id of c.active.get(u) ?? []) {
      if (!added.has(`${u}.${id}`)) throw badInput("the Add proposals must add exactly one key package for each active device of addUserIds");
    }
  }
  for (const d of c.added) {
    if (!isActive(d)) throw badInput(`device ${key(d)} is not an active device`);
    if (addUsers.has(d.userId)) continue;
    if (!c.roster.has(d.userId) || removeUsers.has(d.userId)) {
      throw badInput("the Add proposals must add exactly one key package for each active device of addUserIds");
    }
    if (inTree.has(key(d)) && !removed.has(key(d))) throw badInput(`device ${key(d)} is in the group already`);
    if (role !== "admin" && d.userId !== c.actor.userId) throw forbidden("only an admin or the member itself adds a member's device");
  }
  return { removedMembers };
}
