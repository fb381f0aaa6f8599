// The pure roster rules of a commit: whole users in and out, single devices only for linked or deactivated ones.
import { describe, expect, it } from "vitest";
import { checkRosterChange, type RosterChange } from "../../src/groups/roster-rules.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";
const C = "00000000-0000-4000-8000-00000000000c";
const dev = (userId: string, deviceId: number) => ({ userId, deviceId });

function change(over: Partial<RosterChange>): RosterChange {
  return {
    actor: dev(A, 1),
    roster: new Map([
      [A, "admin"],
      [B, "member"],
    ]),
    inTree: [dev(A, 1), dev(B, 1), dev(B, 2)],
    active: new Map([
      [A, new Set([1, 2])],
      [B, new Set([1, 2])],
      [C, new Set([1, 2])],
    ]),
    addUserIds: [],
    removeUserIds: [],
    added: [],
    removed: [],
    maxMembers: 10,
    ...over,
  };
}
const code = (c: RosterChange) => {
  try {
    checkRosterChange(c);
    return "ok";
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe("checkRosterChange", () => {
  it("adds a user with every active device, not with some", () => {
    expect(code(change({ addUserIds: [C], added: [dev(C, 1), dev(C, 2)] }))).toBe("ok");
    expect(code(change({ addUserIds: [C], added: [dev(C, 1)] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ actor: dev(B, 1), addUserIds: [C], added: [dev(C, 1), dev(C, 2)] }))).toBe("FORBIDDEN");
  });

  it("a member adds its own new device; another non-admin cannot; an inactive or present device is refused", () => {
    expect(code(change({ actor: dev(B, 1), added: [dev(B, 3)], active: new Map([[B, new Set([1, 2, 3])]]) }))).toBe("ok");
    expect(code(change({ actor: dev(B, 1), added: [dev(A, 2)] }))).toBe("FORBIDDEN");
    expect(code(change({ added: [dev(A, 2)] }))).toBe("ok");
    expect(code(change({ added: [dev(A, 3)] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ added: [dev(B, 2)] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ added: [dev(C, 1)] }))).toBe("BAD_USER_INPUT");
  });

  it("removes one leaf only of a deactivated device or a departed user; a user goes with all leaves", () => {
    const bobLostDevice2 = new Map([[B, new Set([1])]]);
    expect(code(change({ actor: dev(B, 1), removed: [dev(B, 2)], active: bobLostDevice2 }))).toBe("ok");
    expect(code(change({ removed: [dev(B, 2)] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ removeUserIds: [B], removed: [dev(B, 1)] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ removeUserIds: [B], removed: [dev(B, 1), dev(B, 2)] }))).toBe("ok");
    expect(code(change({ actor: dev(B, 1), removeUserIds: [A], removed: [dev(A, 1)] }))).toBe("FORBIDDEN");
    const departed = change({ actor: dev(B, 1), roster: new Map([[B, "member"]]), removeUserIds: [A], removed: [dev(A, 1)] });
    expect(code(departed)).toBe("ok");
  });

  it("refuses self-removal, add-and-remove at once, and groups beyond the limit", () => {
    expect(code(change({ removeUserIds: [A], removed: [dev(A, 1)] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ addUserIds: [C], removeUserIds: [C] }))).toBe("BAD_USER_INPUT");
    expect(code(change({ addUserIds: [C], added: [dev(C, 1), dev(C, 2)], maxMembers: 2 }))).toBe("LIMIT_EXCEEDED");
  });
});
