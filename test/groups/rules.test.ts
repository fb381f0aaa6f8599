// Unit tests of the groups' pure rules (src/groups/rules.ts): commit acceptance (epoch, sender leaf, removed and
// added devices, claimed key packages, the new tree), roster arithmetic and the numbering of a commit's events.
import { describe, expect, it } from "vitest";
import {
  addedDevicesOf,
  checkClaimedKeyPackages,
  checkCommitEpoch,
  checkCommitSender,
  checkDeleteForEveryone,
  checkInitialTree,
  checkNextGroupInfo,
  checkNextTree,
  checkRosterChange,
  checkText,
  checkWithoutStoredTree,
  commitSeqs,
  removedDevicesOf,
  storedEpoch,
  userChanges,
  type GroupRole,
  type TreeView,
} from "../../src/groups/rules.ts";
import { groupEvent, isGroupEventId, parseGroupEventId } from "../../src/groups/events.ts";
import { refusal } from "../helpers/refusal.ts";

const uid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const dev = (n: number, d = 1) => ({ userId: uid(n), deviceId: d });
const gid = new Uint8Array([7, 7]);
const tree = (epoch: bigint, ...devices: { userId: string; deviceId: number }[]): TreeView => ({
  groupId: gid,
  epoch,
  leaves: new Map(devices.map((d, i) => [i, d])),
});
const group = { mlsGroupId: gid, epoch: 3 };

describe("commit framing and sender", () => {
  it("accepts a commit only at the group's current epoch, for its group", () => {
    expect(refusal(() => checkCommitEpoch({ groupId: gid, epoch: 3n }, group))).toBeNull();
    const stale = refusal(() => checkCommitEpoch({ groupId: gid, epoch: 2n }, group));
    expect(stale?.code).toBe("STALE_EPOCH");
    expect(stale?.details).toEqual({ epoch: 3 });
    expect(refusal(() => checkCommitEpoch({ groupId: gid, epoch: 4n }, group))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkCommitEpoch({ groupId: new Uint8Array([1]), epoch: 3n }, group))?.code).toBe("BAD_USER_INPUT");
  });

  it("wants the next epoch's GroupInfo for the same group", () => {
    expect(refusal(() => checkNextGroupInfo(tree(4n), group))).toBeNull();
    expect(refusal(() => checkNextGroupInfo(tree(3n), group))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkNextGroupInfo({ ...tree(4n), groupId: new Uint8Array([9]) }, group))?.code).toBe("BAD_USER_INPUT");
  });

  it("the sender's leaf in the previous tree must be the calling device (the new tree only without one)", () => {
    const previous = tree(3n, dev(1), dev(2));
    expect(refusal(() => checkCommitSender({ senderLeaf: 1 }, previous, tree(4n), dev(2)))).toBeNull();
    expect(refusal(() => checkCommitSender({ senderLeaf: 0 }, previous, tree(4n), dev(2)))?.code).toBe("FORBIDDEN");
    expect(refusal(() => checkCommitSender({ senderLeaf: 5 }, previous, tree(4n), dev(2)))?.code).toBe("FORBIDDEN");
    expect(refusal(() => checkCommitSender({ senderLeaf: 0 }, null, tree(1n, dev(1)), dev(1)))).toBeNull();
    expect(refusal(() => checkWithoutStoredTree({ senderLeaf: 0 }, 0))).toBeNull();
    expect(refusal(() => checkWithoutStoredTree({ senderLeaf: 0 }, 1))?.code).toBe("BAD_USER_INPUT");
  });

  it("a new group's tree is of epoch 0 with the creator as its only leaf", () => {
    expect(refusal(() => checkInitialTree(tree(0n, dev(1)), gid, dev(1)))).toBeNull();
    expect(refusal(() => checkInitialTree(tree(0n, dev(1), dev(2)), gid, dev(1)))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkInitialTree(tree(1n, dev(1)), gid, dev(1)))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkInitialTree(tree(0n, dev(2)), gid, dev(1)))?.code).toBe("BAD_USER_INPUT");
  });
});

describe("proposals", () => {
  const ref = (n: number) => new Uint8Array([n]);

  it("removed leaves must be occupied in the previous tree", () => {
    expect(removedDevicesOf([1], tree(3n, dev(1), dev(2)))).toEqual([dev(2)]);
    expect(refusal(() => removedDevicesOf([4], tree(3n, dev(1))))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => removedDevicesOf([0], null))?.code).toBe("BAD_USER_INPUT");
  });

  it("adds name their device and come with a welcome; a welcome needs adds", () => {
    expect(addedDevicesOf([{ ref: ref(1), device: dev(3) }], true)).toEqual([dev(3)]);
    expect(refusal(() => addedDevicesOf([{ ref: ref(1), device: null }], true))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => addedDevicesOf([{ ref: ref(1), device: dev(3) }], false))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => addedDevicesOf([], true))?.code).toBe("BAD_USER_INPUT");
    expect(addedDevicesOf([], false)).toEqual([]);
  });

  it("user lists are de-duplicated, disjoint, and never remove the committer", () => {
    expect(userChanges({ addUserIds: [uid(2), uid(2)], removeUserIds: null }, dev(1))).toEqual({ addUserIds: [uid(2)], removeUserIds: [] });
    expect(refusal(() => userChanges({ addUserIds: [uid(2)], removeUserIds: [uid(2)] }, dev(1)))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => userChanges({ removeUserIds: [uid(1)] }, dev(1)))?.code).toBe("BAD_USER_INPUT");
  });

  it("each added key package was claimed by the committer for the device it names", () => {
    const added = [{ ref: ref(1), device: dev(3) }];
    expect(refusal(() => checkClaimedKeyPackages(added, [{ ref: ref(1), user_id: uid(3), device_id: 1 }]))).toBeNull();
    expect(refusal(() => checkClaimedKeyPackages(added, []))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkClaimedKeyPackages(added, [{ ref: ref(1), user_id: uid(4), device_id: 1 }]))?.code).toBe("BAD_USER_INPUT");
  });

  it("the new tree holds exactly the devices left plus the devices added", () => {
    const now = new Set([`${uid(1)}.1`, `${uid(2)}.1`]);
    const removed = new Set([`${uid(2)}.1`]);
    expect(refusal(() => checkNextTree(now, removed, [`${uid(3)}.1`], tree(4n, dev(1), dev(3))))).toBeNull();
    expect(refusal(() => checkNextTree(now, removed, [`${uid(3)}.1`], tree(4n, dev(1), dev(2), dev(3))))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkNextTree(now, removed, [], tree(4n, dev(1), dev(3))))?.code).toBe("BAD_USER_INPUT");
  });
});

describe("roster arithmetic", () => {
  const roster = new Map<string, GroupRole>([
    [uid(1), "admin"],
    [uid(2), "member"],
  ]);
  const active = new Map([
    [uid(1), new Set([1])],
    [uid(2), new Set([1])],
    [uid(3), new Set([1, 2])],
    [uid(4), new Set([1])],
    [uid(9), new Set([1])],
  ]);
  const base = {
    actor: dev(1),
    roster,
    inTree: [dev(1), dev(2), dev(9)],
    active,
    addUserIds: [] as string[],
    removeUserIds: [] as string[],
    added: [] as ReturnType<typeof dev>[],
    removed: [] as ReturnType<typeof dev>[],
    maxMembers: 3,
  };
  const member = { ...base, actor: dev(2) };

  it("admins add and remove; members may only commit the removal of users who already left", () => {
    expect(checkRosterChange({ ...base, removeUserIds: [uid(2)], removed: [dev(2)] })).toEqual({
      removesMembers: [uid(2)],
      wantRemoved: new Set([`${uid(2)}.1`]),
      gotAdded: [],
    });
    expect(refusal(() => checkRosterChange({ ...member, addUserIds: [uid(3)], added: [dev(3, 1), dev(3, 2)] }))?.code).toBe("FORBIDDEN");
    expect(refusal(() => checkRosterChange({ ...member, removeUserIds: [uid(1)], removed: [dev(1)] }))?.code).toBe("FORBIDDEN");
    // uid(9) left the group but its leaf is still in the tree: any member may commit its removal.
    const left = checkRosterChange({ ...member, removeUserIds: [uid(9)], removed: [dev(9)] });
    expect(left.removesMembers).toEqual([]);
    expect(left.wantRemoved).toEqual(new Set([`${uid(9)}.1`]));
  });

  it("refuses adding a member, removing a stranger, growing past the limit, and a Remove set that differs", () => {
    expect(refusal(() => checkRosterChange({ ...base, addUserIds: [uid(2)] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkRosterChange({ ...base, removeUserIds: [uid(7)] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkRosterChange({ ...base, addUserIds: [uid(3)], added: [dev(3, 1), dev(3, 2)] }))).toBeNull();
    const over = refusal(() => checkRosterChange({ ...base, addUserIds: [uid(3), uid(4)], added: [dev(3, 1), dev(3, 2), dev(4)] }));
    expect(over?.code).toBe("LIMIT_EXCEEDED");
    expect(over?.details).toEqual({ maxMembers: 3 });
    expect(refusal(() => checkRosterChange({ ...base, removeUserIds: [uid(2)], removed: [] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkRosterChange({ ...base, removed: [dev(2)] }))?.code).toBe("BAD_USER_INPUT");
  });

  it("every active device of an added user is added exactly once", () => {
    expect(refusal(() => checkRosterChange({ ...base, addUserIds: [uid(3)], added: [dev(3, 1)] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkRosterChange({ ...base, addUserIds: [uid(3)], added: [dev(3, 1), dev(3, 1), dev(3, 2)] }))?.code).toBe("BAD_USER_INPUT");
  });

  it("single devices: a member adds its own new device, removes a deactivated one; not another member's active one", () => {
    const linked = new Map([...active, [uid(2), new Set([1, 2])]]);
    expect(refusal(() => checkRosterChange({ ...member, active: linked, added: [dev(2, 2)] }))).toBeNull();
    expect(refusal(() => checkRosterChange({ ...member, active: linked, added: [dev(1, 2)] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkRosterChange({ ...member, added: [dev(2, 2)] }))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkRosterChange({ ...member, added: [dev(2)] }))?.code).toBe("BAD_USER_INPUT");
    const lost = new Map([...active, [uid(1), new Set<number>()]]);
    expect(refusal(() => checkRosterChange({ ...member, active: lost, removed: [dev(1)] }))).toBeNull();
    expect(refusal(() => checkRosterChange({ ...member, removed: [dev(1)] }))?.code).toBe("BAD_USER_INPUT");
  });

  it("a commit's events are numbered commit, welcome, members changed, after the group's last", () => {
    expect(commitSeqs(10n, true, true)).toEqual({ commitSeq: 11n, welcomeSeq: 12n, membersSeq: 13n, lastSeq: 13n });
    expect(commitSeqs(10n, false, true)).toEqual({ commitSeq: 11n, welcomeSeq: null, membersSeq: 12n, lastSeq: 12n });
    expect(commitSeqs(0n, false, false)).toEqual({ commitSeq: 1n, welcomeSeq: null, membersSeq: null, lastSeq: 1n });
  });
});

describe("delete for everyone", () => {
  it("only the sender, only within the window", () => {
    const m = { senderUserId: uid(1), createdAt: new Date(1_000_000) };
    expect(refusal(() => checkDeleteForEveryone(m, dev(1), 60, 1_000_000 + 60_000))).toBeNull();
    expect(refusal(() => checkDeleteForEveryone(m, dev(1), 60, 1_000_000 + 60_001))?.code).toBe("FORBIDDEN");
    expect(refusal(() => checkDeleteForEveryone(m, dev(2), 60, 1_000_000))?.code).toBe("FORBIDDEN");
  });
});

describe("bounds and ids", () => {
  it("bounds names and descriptions, and clamps a 64-bit epoch", () => {
    expect(refusal(() => checkText("x".repeat(128), "y".repeat(1024)))).toBeNull();
    expect(refusal(() => checkText("x".repeat(129)))?.code).toBe("BAD_USER_INPUT");
    expect(refusal(() => checkText(null, "y".repeat(1025)))?.code).toBe("BAD_USER_INPUT");
    expect(storedEpoch(5n)).toBe(5);
    expect(storedEpoch(2n ** 40n)).toBe(0x7fffffff);
  });

  it("group event ids round-trip; malformed ones are the groups' but invalid", () => {
    const e = groupEvent(uid(5), 12n, "APPLICATION", 2, uid(1), 1, new Uint8Array([1, 2]), new Date(0));
    expect(e).toMatchObject({ id: `g:${uid(5)}:12`, seq: 12, message: "AQI=" });
    expect(parseGroupEventId(e.id)).toEqual({ groupId: uid(5), seq: 12n });
    expect(isGroupEventId("g:garbage")).toBe(true);
    expect(parseGroupEventId("g:garbage")).toBeNull();
    expect(isGroupEventId("12")).toBe(false);
  });
});
