// The in-process presence store (one node, no Redis): which device connections are live, per node, until when. The
// Redis store keeps the same contract across nodes and is exercised by the multi-node presence tests.
import { describe, expect, it } from "vitest";
import { createMemoryPresenceStore } from "../../src/live/presence-store.ts";

const alice = "00000000-0000-4000-8000-00000000000a";
const bob = "00000000-0000-4000-8000-00000000000b";

describe("memory presence store", () => {
  it("a user is online while any of its connections is live, on any node, until it expires", async () => {
    const store = createMemoryPresenceStore();
    await store.put([{ userId: alice, deviceId: 1, nodeId: "n1" }], 1_000);
    await store.put([{ userId: alice, deviceId: 2, nodeId: "n2" }], 2_000);
    expect(await store.online([alice, bob], 500)).toEqual(new Set([alice]));
    expect(await store.onlineDevices([{ userId: alice, deviceId: 1 }, { userId: alice, deviceId: 2 }, { userId: bob, deviceId: 1 }], 500)).toEqual(
      new Set([`${alice}:1`, `${alice}:2`]),
    );
    expect(await store.onlineDevices([{ userId: alice, deviceId: 1 }, { userId: alice, deviceId: 2 }], 1_500)).toEqual(new Set([`${alice}:2`]));
    expect(await store.online([alice], 2_500)).toEqual(new Set());
  });

  it("refresh moves an expiry, remove drops one node's connection and leaves the other", async () => {
    const store = createMemoryPresenceStore();
    await store.put([{ userId: alice, deviceId: 1, nodeId: "n1" }, { userId: alice, deviceId: 1, nodeId: "n2" }], 1_000);
    await store.refresh([{ userId: alice, deviceId: 1, nodeId: "n1" }], 5_000);
    await store.remove({ userId: alice, deviceId: 1, nodeId: "n2" });
    expect(await store.onlineDevices([{ userId: alice, deviceId: 1 }], 2_000)).toEqual(new Set([`${alice}:1`]));
    await store.remove({ userId: alice, deviceId: 1, nodeId: "n1" });
    expect(await store.online([alice], 0)).toEqual(new Set());
  });

  it("reap returns each expired connection once and keeps the live ones", async () => {
    const store = createMemoryPresenceStore();
    await store.put([{ userId: alice, deviceId: 1, nodeId: "n1" }, { userId: bob, deviceId: 3, nodeId: "n1" }], 1_000);
    await store.put([{ userId: bob, deviceId: 4, nodeId: "n2" }], 9_000);
    expect(await store.reap(2_000)).toEqual([
      { userId: alice, deviceId: 1, nodeId: "n1" },
      { userId: bob, deviceId: 3, nodeId: "n1" },
    ]);
    expect(await store.reap(2_000)).toEqual([]);
    expect(await store.online([alice, bob], 2_000)).toEqual(new Set([bob]));
  });

  it("keeps last seen per user", async () => {
    const store = createMemoryPresenceStore();
    await store.setLastSeen(alice, 42);
    expect(await store.lastSeen([alice, bob])).toEqual(new Map([[alice, 42]]));
  });
});
