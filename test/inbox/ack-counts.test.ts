// The pure part of batched acknowledgements: each request of a batch is answered with its own device's removed
// rows among its own ids, and a row two requests named counts for the first one only.
import { describe, expect, it } from "vitest";
import { countPerRequest } from "../../src/inbox/rules.ts";

const dev = (userId: string, deviceId = 1) => ({ userId, deviceId });

describe("countPerRequest", () => {
  it("counts each removed row once, for the first request of its device that named it", () => {
    const reqs = [
      { actor: dev("a"), ids: [1n, 2n, 2n] },
      { actor: dev("a"), ids: [2n, 3n] },
      { actor: dev("b"), ids: [1n, 4n] },
      { actor: dev("a", 2), ids: [3n] },
    ];
    const removed = [
      { id: "1", userId: "a", deviceId: 1 },
      { id: "2", userId: "a", deviceId: 1 },
      { id: "3", userId: "a", deviceId: 1 },
      { id: "4", userId: "b", deviceId: 1 },
    ];
    // b's id 1 is a's row (removed for a), a's device 2 names a row of device 1: neither counts.
    expect(countPerRequest(reqs, removed)).toEqual([2, 1, 1, 0]);
  });

  it("answers 0 to every request when nothing was removed", () => {
    expect(countPerRequest([{ actor: dev("a"), ids: [1n] }, { actor: dev("b"), ids: [] }], [])).toEqual([0, 0]);
  });
});
