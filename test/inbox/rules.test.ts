// Unit tests of the inbox's pure rules (src/inbox/rules.ts): item ids, retention, and routing acknowledged ids.
import { describe, expect, it } from "vitest";
import { MAX_ACK_ID_CHARS, MAX_ACK_IDS, parseItemId, retentionExpiry, routeAcks } from "../../src/inbox/rules.ts";
import { refusal } from "../helpers/refusal.ts";

const codeOf = (fn: () => unknown) => refusal(fn)?.code ?? null;

describe("inbox rules", () => {
  it("parses decimal queue item ids and refuses anything else", () => {
    expect(parseItemId("42")).toBe(42n);
    expect(parseItemId("9223372036854775807")).toBe(9223372036854775807n);
    for (const bad of ["", "-1", "1.5", "0x10", "12345678901234567890", "1 "]) {
      expect(codeOf(() => parseItemId(bad))).toBe("BAD_USER_INPUT");
    }
  });

  it("keeps an item for the retention period from when it was queued", () => {
    const from = new Date("2026-01-01T00:00:00Z");
    expect(retentionExpiry(from, 86_400).toISOString()).toBe("2026-01-02T00:00:00.000Z");
  });

  it("routes ids to the source that owns them, de-duplicates its own, and refuses unknown ones", () => {
    const groups = { owns: (id: string) => id.startsWith("g:") };
    const { own, routed } = routeAcks(["3", "g:x:1", "3", "5", "g:y:2"], [groups]);
    expect(own).toEqual([3n, 5n]);
    expect(routed.get(groups)).toEqual(["g:x:1", "g:y:2"]);
    expect(routeAcks(["1"], [groups]).routed.size).toBe(0);
    expect(codeOf(() => routeAcks(["1", "nope"], [groups]))).toBe("BAD_USER_INPUT");
    // Live-only envelope ids were never queued: acknowledging them is a no-op, not an error.
    const live = routeAcks(["live:0b6f2a1e-5c3d-4e8f-9a7b-1c2d3e4f5a6b", "7"], [groups]);
    expect(live.own).toEqual([7n]);
    expect(live.routed.size).toBe(0);
    expect(codeOf(() => routeAcks(Array.from({ length: MAX_ACK_IDS + 1 }, (_, i) => String(i)), [groups]))).toBe(
      "BAD_USER_INPUT",
    );
  });

  it("refuses an id longer than any queue or group event id before routing it", () => {
    // Even one its source would claim: the bound holds for every source.
    const groups = { owns: (id: string) => id.startsWith("g:") };
    const long = `g:${"x".repeat(MAX_ACK_ID_CHARS)}`;
    expect(codeOf(() => routeAcks(["1", long], [groups]))).toBe("BAD_USER_INPUT");
    expect(routeAcks([`g:${"x".repeat(MAX_ACK_ID_CHARS - 2)}`], [groups]).routed.get(groups)).toHaveLength(1);
  });
});
