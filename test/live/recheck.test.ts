// The pure parts of the lost-event re-check (src/live/recheck.ts) and of the test-only failpoints
// (src/failpoints.ts). The end-to-end proofs are test/live/lost-events.test.ts and test/faults/.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { CRASH_EXIT_CODE, faultFor, withFailpoints, type Failpoint } from "../../src/failpoints.ts";
import { createMemoryBus } from "../../src/live/memory-bus.ts";
import { channels } from "../../src/live/channels.ts";
import { chunks, nextFloor, QuietGate } from "../../src/live/recheck.ts";
import { createLogger } from "../../src/logger.ts";

describe("QuietGate: a round skips only when the queue's id counter stood still for two rounds", () => {
  it("looks on the first rounds, after every move, and for one more round after the last move", () => {
    const gate = new QuietGate();
    const due = [5n, 5n, 5n, 5n, 6n, 6n, 6n, 9n, 9n, 9n].map((c) => gate.due(c));
    expect(due).toEqual([true, true, false, false, true, true, false, true, true, false]);
  });

  it("an insert drawn just before a look whose commit lands after it is looked at again (the round after)", () => {
    const gate = new QuietGate();
    gate.due(1n);
    gate.due(1n);
    // id 2 is drawn; this round's query may run before its transaction commits...
    expect(gate.due(2n)).toBe(true);
    // ...so the next round, with the counter unchanged, still looks.
    expect(gate.due(2n)).toBe(true);
    expect(gate.due(2n)).toBe(false);
  });
});

describe("nextFloor: a stream looks behind by two looks", () => {
  it("starts at 0 and then uses the top of two looks ago", () => {
    let floors: [bigint, bigint] | null = null;
    const used: bigint[] = [];
    for (const top of [10n, 20n, 30n, 40n]) {
      const r = nextFloor(floors, top);
      used.push(r.floor);
      floors = r.floors;
    }
    expect(used).toEqual([0n, 0n, 10n, 20n]);
  });
});

describe("chunks", () => {
  it("splits into parts of at most the size, in order, and nothing for nothing", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 2)).toEqual([]);
  });
});

describe("failpoints", () => {
  const all = (...p: Failpoint[]) => new Set(p);

  it("publish-after-commit drops inbox, group and group-join events only", () => {
    const p = all("publish-after-commit");
    expect(faultFor(p, channels.device("u", 1))).toBe("drop");
    expect(faultFor(p, channels.group("g"))).toBe("drop");
    expect(faultFor(p, channels.groupJoins("u", 1))).toBe("drop");
    expect(faultFor(p, channels.presence("u"))).toBe("deliver");
    expect(faultFor(p, channels.conversation("c"))).toBe("deliver");
    expect(faultFor(p, channels.control)).toBe("deliver");
  });

  it("revocation-publish drops the control channel only; crash-after-commit crashes where a post-commit publish would go", () => {
    expect(faultFor(all("revocation-publish"), channels.control)).toBe("drop");
    expect(faultFor(all("revocation-publish"), channels.device("u", 1))).toBe("deliver");
    expect(faultFor(all("crash-after-commit"), channels.device("u", 1))).toBe("crash");
    expect(faultFor(all("crash-after-commit"), channels.presence("u"))).toBe("deliver");
    expect(faultFor(all(), channels.device("u", 1))).toBe("deliver");
  });

  it("none named: the bus itself, untouched (nothing in the publish path)", () => {
    const bus = createMemoryBus(createLogger("silent"));
    expect(withFailpoints(bus, new Set())).toBe(bus);
  });

  it("on a real bus: a dropped event reaches no listener, a crash exits with its code before publishing", async () => {
    const bus = createMemoryBus(createLogger("silent"));
    const got: unknown[] = [];
    await bus.subscribe(channels.device("u", 1), (e) => got.push(e));
    await bus.subscribe(channels.presence("u"), (e) => got.push(e));
    const dropping = withFailpoints(bus, all("publish-after-commit"));
    await dropping.publish(channels.device("u", 1), "lost");
    await dropping.publish(channels.presence("u"), "kept");
    expect(got).toEqual(["kept"]);
    const exits: number[] = [];
    const crashing = withFailpoints(bus, all("crash-after-commit"), (code) => {
      exits.push(code);
      throw new Error("exited");
    });
    await expect(crashing.publish(channels.device("u", 1), "never")).rejects.toThrow("exited");
    expect(exits).toEqual([CRASH_EXIT_CODE]);
    expect(got).toEqual(["kept"]);
  });

  it("FAILPOINTS is off by default, takes a comma list, and refuses an unknown name", () => {
    expect(loadConfig({}).failpoints.size).toBe(0);
    expect([...loadConfig({ FAILPOINTS: "publish-after-commit, revocation-publish" }).failpoints]).toEqual([
      "publish-after-commit",
      "revocation-publish",
    ]);
    expect(() => loadConfig({ FAILPOINTS: "drop-everything" })).toThrow(ConfigError);
    expect(() => loadConfig({ FAILPOINTS: "drop-everything" })).toThrow(/FAILPOINTS/);
  });
});
