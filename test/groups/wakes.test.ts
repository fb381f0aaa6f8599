// Group wake-ups coalesced per group and event-loop turn (src/groups/wakes.ts): one device-list read per group, the
// sender left out only when one device sent everything of that turn.
import { describe, expect, it } from "vitest";
import { groupWakes } from "../../src/groups/wakes.ts";

const turn = () => new Promise((r) => setImmediate(r));

describe("group wake-ups", () => {
  it("many messages of one turn: one call per group, naming the sender only when it was the only one", async () => {
    const calls: { sender: string | null }[] = [];
    const reads: string[] = [];
    const stored = groupWakes(
      { applicationStored: (sender, recipients) => void (calls.push({ sender: sender && `${sender.userId}/${sender.deviceId}` }), recipients()) },
      async (groupId) => (reads.push(groupId), []),
    );
    const a = { userId: "a", deviceId: 1 };
    const b = { userId: "b", deviceId: 1 };
    for (let i = 0; i < 10; i++) stored("g1", a);
    stored("g2", a);
    stored("g2", b);
    stored("g2", { userId: "a", deviceId: 2 });
    expect(calls).toEqual([]); // nothing before the turn ends
    await turn();
    expect(calls.map((c) => c.sender)).toEqual(["a/1", null]);
    expect(reads).toEqual(["g1", "g2"]);
    stored("g1", b);
    await turn();
    expect(calls.map((c) => c.sender)).toEqual(["a/1", null, "b/1"]);
  });

  it("without push configured the device list is never read", async () => {
    let reads = 0;
    const stored = groupWakes(undefined, async () => (reads++, []));
    stored("g1", { userId: "a", deviceId: 1 });
    await turn();
    expect(reads).toBe(0);
  });
});
