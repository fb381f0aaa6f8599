// The SDK's acknowledgement batching (src/client/acks.ts): the first id leaves at once, ids acknowledged while a call
// is in flight go together in the next call, a failed call reports its error and answers false for its ids, and
// flush() waits until every id queued so far was answered.
import { describe, expect, it } from "vitest";
import { AckQueue } from "../../src/client/acks.ts";
import { gate } from "../helpers/wait.ts";

describe("AckQueue", () => {
  it("sends the first id alone and what came meanwhile together, one call at a time", async () => {
    const calls: string[][] = [];
    const gates = [gate(), gate()];
    let inFlight = 0;
    let most = 0;
    const q = new AckQueue(
      async (ids) => {
        calls.push(ids);
        most = Math.max(most, ++inFlight);
        await gates[calls.length - 1]?.p;
        inFlight--;
      },
      () => {},
    );
    const answers = [q.add("1"), q.add("2"), q.add("3")];
    expect(calls).toEqual([["1"]]);
    gates[0].open();
    await answers[0];
    expect(calls).toEqual([["1"], ["2", "3"]]);
    answers.push(q.add("4"));
    gates[1].open();
    expect(await Promise.all(answers)).toEqual([true, true, true, true]);
    expect(calls).toEqual([["1"], ["2", "3"], ["4"]]);
    expect(most).toBe(1);
  });

  it("splits at maxIds, reports a failed call and answers false for its ids only", async () => {
    const errors: unknown[] = [];
    const calls: string[][] = [];
    const first = gate();
    const q = new AckQueue(
      async (ids) => {
        calls.push(ids);
        if (calls.length === 1) await first.p;
        if (ids.includes("bad")) throw new Error("network down");
      },
      (e) => errors.push(e),
      2,
    );
    const answers = ["a", "b", "bad", "c", "d"].map((id) => q.add(id));
    first.open();
    await q.flush();
    expect(calls).toEqual([["a"], ["b", "bad"], ["c", "d"]]);
    expect(await Promise.all(answers)).toEqual([true, false, false, true, true]);
    expect(errors).toHaveLength(1);
  });
});
