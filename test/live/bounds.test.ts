// The pure parts of the memory bounds: what an event weighs, the Feed's byte budget (drop and tell, wait for room),
// the send batcher's queue bound, and the LRU bound on parsed ratchet trees.
import { describe, expect, it } from "vitest";
import { Batcher } from "../../src/live/batcher.ts";
import { Feed } from "../../src/live/feed.ts";
import { footprint, overflows } from "../../src/live/footprint.ts";
import { createTreeCache } from "../../src/groups/tree-cache.ts";
import type { ParsedGroupInfo } from "../../src/groups/mls-framing.ts";

const KiB = 1024;
const envelope = (bodyBytes: number) => ({
  __typename: "EnvelopeEvent",
  id: "1",
  expiresAt: null,
  envelope: { id: "1", messageId: "m", body: "A".repeat(bodyBytes), type: 1 },
});

describe("footprint", () => {
  it("charges strings and byte arrays in full, and little for the rest", () => {
    const f = footprint(envelope(256 * KiB));
    expect(f).toBeGreaterThan(256 * KiB);
    expect(f).toBeLessThan(256 * KiB + 1024);
    expect(footprint({ b: new Uint8Array(10_000) })).toBeGreaterThan(10_000);
    expect(footprint([envelope(1000), envelope(1000)])).toBeGreaterThan(2000);
  });

  it("stops at a depth bound on hostile nesting", () => {
    let deep: unknown = "x".repeat(1000);
    for (let i = 0; i < 100; i++) deep = { d: deep };
    expect(footprint(deep)).toBeLessThan(1000);
  });
});

describe("overflows", () => {
  const bounds = { count: 10, bytes: 100 };
  it("is the count bound or the byte bound, whichever comes first", () => {
    expect(overflows({ count: 10, bytes: 0 }, 1, bounds)).toBe(true);
    expect(overflows({ count: 2, bytes: 90 }, 11, bounds)).toBe(true);
    expect(overflows({ count: 2, bytes: 90 }, 10, bounds)).toBe(false);
  });
  it("always lets one item in when nothing is held", () => {
    expect(overflows({ count: 0, bytes: 0 }, 1_000, bounds)).toBe(false);
  });
});

describe("a Feed with a byte budget", () => {
  const budget = { maxBytes: 1024 * KiB, sizeOf: footprint };

  it("drops a consumer past its bytes though far under its count, keeps nothing, and says so once", async () => {
    let told = 0;
    const feed = new Feed<ReturnType<typeof envelope>>(2_000, budget, () => told++);
    for (let i = 0; i < 3; i++) feed.push(envelope(256 * KiB));
    expect(feed.heldBytes).toBeGreaterThan(768 * KiB);
    feed.push(envelope(256 * KiB)); // over 1 MiB
    feed.push(envelope(256 * KiB)); // already closed: ignored
    expect(told).toBe(1);
    expect(feed.heldBytes).toBe(0);
    await expect(feed.next()).rejects.toMatchObject({ code: "LIMIT_EXCEEDED" });
    expect(await feed.next()).toEqual({ value: undefined, done: true });
  });

  it("accounts what the consumer takes: a reader that keeps up is never dropped", async () => {
    let told = 0;
    const feed = new Feed<ReturnType<typeof envelope>>(2_000, budget, () => told++);
    for (let i = 0; i < 100; i++) {
      feed.push(envelope(256 * KiB));
      feed.push(envelope(256 * KiB));
      await feed.next();
      await feed.next();
      expect(feed.heldBytes).toBe(0);
    }
    expect(told).toBe(0);
    expect(feed.closed).toBe(false);
  });

  it("makes a waiting producer wait until under half the bytes", async () => {
    const feed = new Feed<ReturnType<typeof envelope>>(2_000, budget);
    feed.push(envelope(300 * KiB));
    feed.push(envelope(300 * KiB));
    let roomy = false;
    const waiting = feed.room().then(() => (roomy = true));
    await new Promise((r) => setImmediate(r));
    expect(roomy).toBe(false);
    await feed.next();
    await waiting;
    expect(roomy).toBe(true);
  });
});

describe("the batcher's queue bound", () => {
  it("answers UNAVAILABLE at once when the calls waiting for a batch reach the bound, and recovers", async () => {
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    const batcher = new Batcher<number, number>(
      async (items) => {
        await stuck;
        return items.map((i) => ({ ok: true as const, value: i }));
      },
      { maxBatch: 1, maxConcurrent: 1, maxQueued: 3 },
    );
    const first = batcher.submit(0);
    await new Promise((r) => setImmediate(r)); // the first batch runs (and hangs)
    const waiting = [1, 2, 3].map((i) => batcher.submit(i));
    await expect(batcher.submit(4)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(batcher.queued).toBe(3);
    release();
    expect(await Promise.all([first, ...waiting])).toEqual([0, 1, 2, 3]);
    expect(await batcher.submit(5)).toBe(5);
  });
});

describe("the parsed-tree cache", () => {
  const tree = {} as ParsedGroupInfo;
  it("holds at most its entry bound, forgetting the least recently used", () => {
    const cache = createTreeCache({ entries: 3, bytes: 1_000_000 });
    for (let i = 0; i < 10; i++) cache.set(`g${i}`, { epoch: i, parsed: tree, bytes: 100 });
    expect(cache.size).toBe(3);
    expect([...cache.keys()].sort()).toEqual(["g7", "g8", "g9"]);
  });
  it("holds at most its byte bound, and nothing larger than it", () => {
    const cache = createTreeCache({ entries: 1_000, bytes: 1_000 });
    for (let i = 0; i < 10; i++) cache.set(`g${i}`, { epoch: i, parsed: tree, bytes: 300 });
    expect(cache.calculatedSize).toBeLessThanOrEqual(1_000);
    expect(cache.size).toBe(3);
    cache.set("huge", { epoch: 1, parsed: tree, bytes: 5_000 });
    expect(cache.has("huge")).toBe(false);
  });
});
