// The Redis bus between nodes (src/live/redis-bus.ts), two buses on one real Redis standing for two nodes: an event
// reaches the publishing node's listeners at publish, once (its own copy coming back from Redis is dropped), and the
// other node's through Redis, once, as JSON; a node of an earlier version (events without an origin mark) is still
// heard, and what is not JSON is dropped.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Bus } from "../../src/live/bus.ts";
import { createRedisBus } from "../../src/live/redis-bus.ts";
import { createLogger } from "../../src/logger.ts";
import { usingRedis } from "../helpers/database.ts";
import { eventually } from "../helpers/wait.ts";

describe.skipIf(!usingRedis)("redis bus, two nodes", () => {
  const prefix = `bus-test-${randomUUID().slice(0, 8)}:`;
  let a: Bus;
  let b: Bus;
  let raw: Redis;
  const heard = { a: [] as unknown[], b: [] as unknown[] };
  // What each bus logged, one JSON line per entry.
  const logged = { a: [] as string[], b: [] as string[] };
  const logTo = (lines: string[]) => createLogger("warn", { write: (line: string) => void lines.push(line) });

  beforeAll(async () => {
    const url = process.env.REDIS_URL!;
    a = createRedisBus(url, prefix, logTo(logged.a));
    b = createRedisBus(url, prefix, logTo(logged.b));
    raw = new Redis(url);
    await a.subscribe("ch", (e) => heard.a.push(e));
    await b.subscribe("ch", (e) => heard.b.push(e));
    // The publishers queue nothing while connecting (a publish then is dropped, as while Redis is away): connected first.
    await eventually(() => a.ping());
    await eventually(() => b.ping());
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), raw?.quit()]);
  });

  /** Everything published before it has reached both nodes' subscribers: a marker from the other node arrived. */
  async function settled() {
    const mark = { marker: randomUUID() };
    await b.publish("ch", mark);
    await eventually(() => expect(heard.a).toContainEqual(mark));
    const back = { marker: randomUUID() };
    await a.publish("ch", back);
    await eventually(() => expect(heard.b).toContainEqual(back));
    heard.a.length = heard.b.length = 0;
  }

  it("gives the publishing node's listeners the event at publish and the other node's through Redis, each once", async () => {
    await settled();
    const event = { id: "1", at: new Date("2026-12-06T00:00:00Z"), body: "x" };
    const publishing = a.publish("ch", event);
    // Before the publish has even been answered by Redis: in process, the object itself.
    expect(heard.a).toEqual([event]);
    expect(heard.a[0]).toBe(event);
    await publishing;
    await eventually(() => expect(heard.b).toEqual([{ id: "1", at: "2026-12-06T00:00:00.000Z", body: "x" }]));
    // b's marker arrives at a after a's own copy came back: a heard its event once, and b's marker.
    const mark = { marker: randomUUID() };
    await b.publish("ch", mark);
    await eventually(() => expect(heard.a).toContainEqual(mark));
    expect(heard.a).toEqual([event, mark]);
  });

  it("hears events of a node without origin marks, and drops what is not JSON", async () => {
    await settled();
    await raw.publish(`${prefix}ch`, JSON.stringify({ from: "an earlier version" }));
    await raw.publish(`${prefix}ch`, "not json");
    const mark = { marker: randomUUID() };
    await raw.publish(`${prefix}ch`, JSON.stringify(mark));
    // Both subscribers get Redis's messages in order: once the marker is in, the junk before it was dropped.
    await eventually(() => expect(heard.b).toContainEqual(mark));
    await eventually(() => expect(heard.a).toContainEqual(mark));
    expect(heard.a).toEqual([{ from: "an earlier version" }, mark]);
    expect(heard.b).toEqual([{ from: "an earlier version" }, mark]);
    for (const lines of [logged.a, logged.b]) {
      expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["live event dropped: not JSON"]);
    }
  });
});
