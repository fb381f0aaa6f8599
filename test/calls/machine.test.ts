// The call state machine on its own (pure): each rule is an input and the effects it must (and must not) produce.
import { describe, expect, it } from "vitest";
import { CallMachine, CallStateError, type Effect } from "../../src/client/calls/machine.ts";
import { checkSignal, SignalError } from "../../src/client/calls/signals.ts";

const ALICE = "a0000000-0000-4000-8000-000000000001";
const BOB = "b0000000-0000-4000-8000-000000000002";
const CAROL = "c0000000-0000-4000-8000-000000000003";
const id = (n: number) => n.toString(16).padStart(32, "0");
const sends = (fx: Effect[]) => fx.flatMap((e) => (e.kind === "send" ? [{ to: e.to, ...e.signal }] : []));
const events = (fx: Effect[]) => fx.flatMap((e) => (e.kind === "emit" ? [e.event] : []));
const ended = (fx: Effect[]) => events(fx).flatMap((e) => (e.type === "callEnded" ? [e.reason] : []));

/** Bob's device `d` with an incoming call from Alice's device 1. */
function ringing(d = 1, ringMs = 60_000) {
  const m = new CallMachine({ userId: BOB, deviceId: d }, ringMs);
  const fx = m.receive({ userId: ALICE, deviceId: 1 }, { type: "offer", callId: id(5), sdp: "v=0 offer", video: true });
  return { m, fx };
}

describe("CallMachine", () => {
  it("an offer rings: callOffer event and a ring timer a little longer than the caller's", () => {
    const { m, fx } = ringing(1, 60_000);
    expect(events(fx)).toEqual([{ type: "callOffer", callId: id(5), from: { userId: ALICE, deviceId: 1 }, sdp: "v=0 offer", video: true }]);
    expect(fx).toContainEqual({ kind: "arm", callId: id(5), ms: 70_000 });
    expect(m.active()).toMatchObject({ callId: id(5), direction: "incoming", phase: "ringing" });
  });

  it("the caller sends the offer to the callee (every device) and arms the ring timeout", () => {
    const m = new CallMachine({ userId: ALICE, deviceId: 1 }, 1_000);
    const fx = m.offer(id(5), BOB, "v=0", false);
    expect(sends(fx)).toEqual([{ to: BOB, type: "offer", callId: id(5), sdp: "v=0", video: false }]);
    expect(fx).toContainEqual({ kind: "arm", callId: id(5), ms: 1_000 });
    expect(() => m.offer(id(6), CAROL, "v=0", false)).toThrow(CallStateError);
    expect(() => new CallMachine({ userId: ALICE, deviceId: 1 }).offer(id(7), ALICE, "v=0", false)).toThrow(/own account/);
  });

  it("answering sends the answer to the caller's device only; the sync copy ends the other devices' ringing", () => {
    const one = ringing(1);
    expect(sends(one.m.answer(id(5), "v=0 answer"))).toEqual([{ to: ALICE, type: "answer", callId: id(5), sdp: "v=0 answer", toDevice: 1 }]);
    const two = ringing(2);
    const fx = two.m.receive({ userId: BOB, deviceId: 1 }, { type: "answer", callId: id(5), sdp: "x", toDevice: 1 }, ALICE);
    expect(ended(fx)).toEqual(["answeredElsewhere"]);
    expect(fx).toContainEqual({ kind: "disarm", callId: id(5) });
    // A device that answered itself ignores the other device's (racing) answer.
    expect(one.m.receive({ userId: BOB, deviceId: 2 }, { type: "answer", callId: id(5), sdp: "x", toDevice: 1 }, ALICE)).toEqual([]);
  });

  it("the caller takes the first answer, hands over early ICE from that device, and tells a second answerer it lost", () => {
    const m = new CallMachine({ userId: ALICE, deviceId: 1 });
    m.offer(id(5), BOB, "v=0", false);
    const cand = (c: string) => ({ candidate: c, sdpMid: "0", sdpMLineIndex: 0, usernameFragment: null });
    expect(m.receive({ userId: BOB, deviceId: 2 }, { type: "ice", callId: id(5), candidates: [cand("early2")], toDevice: 1 })).toEqual([]);
    expect(m.receive({ userId: BOB, deviceId: 1 }, { type: "ice", callId: id(5), candidates: [cand("early1")], toDevice: 1 })).toEqual([]);
    const fx = m.receive({ userId: BOB, deviceId: 2 }, { type: "answer", callId: id(5), sdp: "ans", toDevice: 1 });
    expect(events(fx)).toEqual([
      { type: "callAnswer", callId: id(5), from: { userId: BOB, deviceId: 2 }, sdp: "ans" },
      { type: "callIce", callId: id(5), from: { userId: BOB, deviceId: 2 }, candidates: [cand("early2")] },
    ]);
    expect(sends(m.receive({ userId: BOB, deviceId: 1 }, { type: "answer", callId: id(5), sdp: "late", toDevice: 1 }))).toEqual([
      { to: BOB, type: "hangup", callId: id(5), reason: "answeredElsewhere", toDevice: 1 },
    ]);
    // ICE from the losing device is dropped; from the answering one it goes to the app; ours goes to that device.
    expect(m.receive({ userId: BOB, deviceId: 1 }, { type: "ice", callId: id(5), candidates: [cand("x")], toDevice: 1 })).toEqual([]);
    expect(events(m.receive({ userId: BOB, deviceId: 2 }, { type: "ice", callId: id(5), candidates: [cand("y")], toDevice: 1 }))).toHaveLength(1);
    expect(sends(m.ice(id(5), [cand("mine")]))).toEqual([{ to: BOB, type: "ice", callId: id(5), candidates: [cand("mine")], toDevice: 2 }]);
  });

  it("a device targeted with answeredElsewhere by the caller ends; other devices ignore a signal meant for another", () => {
    const { m } = ringing(1);
    m.answer(id(5), "a");
    expect(m.receive({ userId: ALICE, deviceId: 1 }, { type: "hangup", callId: id(5), reason: "answeredElsewhere", toDevice: 2 })).toEqual([]);
    expect(ended(m.receive({ userId: ALICE, deviceId: 1 }, { type: "hangup", callId: id(5), reason: "answeredElsewhere", toDevice: 1 }))).toEqual([
      "answeredElsewhere",
    ]);
  });

  it("decline: the caller ends with declined, the callee's other devices with declinedElsewhere", () => {
    const caller = new CallMachine({ userId: ALICE, deviceId: 1 });
    caller.offer(id(5), BOB, "v=0", false);
    const one = ringing(1);
    const fx = one.m.decline(id(5));
    expect(sends(fx)).toEqual([{ to: ALICE, type: "decline", callId: id(5), toDevice: 1 }]);
    expect(events(fx)).toContainEqual({ type: "callEnded", callId: id(5), peerUserId: ALICE, reason: "declined", local: true });
    expect(ended(caller.receive({ userId: BOB, deviceId: 1 }, sends(fx)[0]))).toEqual(["declined"]);
    expect(ended(ringing(2).m.receive({ userId: BOB, deviceId: 1 }, { type: "decline", callId: id(5), toDevice: 1 }, ALICE))).toEqual([
      "declinedElsewhere",
    ]);
  });

  it("busy: a device in a call answers another offer with busy and keeps its call; the caller ends with busy", () => {
    const { m } = ringing(1);
    m.answer(id(5), "a");
    const fx = m.receive({ userId: CAROL, deviceId: 3 }, { type: "offer", callId: id(9), sdp: "v=0", video: false });
    expect(sends(fx)).toEqual([{ to: CAROL, type: "busy", callId: id(9), toDevice: 3 }]);
    expect(events(fx)).toEqual([]);
    expect(m.active()).toMatchObject({ callId: id(5), phase: "connected" });
    const carol = new CallMachine({ userId: CAROL, deviceId: 3 });
    carol.offer(id(9), BOB, "v=0", false);
    expect(ended(carol.receive({ userId: BOB, deviceId: 1 }, sends(fx)[0]))).toEqual(["busy"]);
    // The busy device's sync copy stops its account's other ringing devices.
    const other = new CallMachine({ userId: BOB, deviceId: 2 });
    other.receive({ userId: CAROL, deviceId: 3 }, { type: "offer", callId: id(9), sdp: "v=0", video: false });
    expect(ended(other.receive({ userId: BOB, deviceId: 1 }, sends(fx)[0], CAROL))).toEqual(["busy"]);
  });

  it("glare: both sides keep the call with the larger id, the loser withdraws its own offer", () => {
    const alice = new CallMachine({ userId: ALICE, deviceId: 1 });
    const bob = new CallMachine({ userId: BOB, deviceId: 1 });
    const aOffer = sends(alice.offer(id(3), BOB, "a-offer", false))[0];
    const bOffer = sends(bob.offer(id(8), ALICE, "b-offer", false))[0];
    // Bob's id is larger: Bob ignores Alice's offer; Alice ends hers (glare), withdraws it, and rings for Bob's.
    expect(bob.receive({ userId: ALICE, deviceId: 1 }, aOffer)).toEqual([]);
    const fx = alice.receive({ userId: BOB, deviceId: 1 }, bOffer);
    expect(sends(fx)).toEqual([{ to: BOB, type: "hangup", callId: id(3), reason: "hangup" }]);
    expect(events(fx).map((e) => e.type)).toEqual(["callEnded", "callOffer"]);
    expect(ended(fx)).toEqual(["glare"]);
    expect(alice.active()).toMatchObject({ callId: id(8), direction: "incoming" });
    expect(bob.active()).toMatchObject({ callId: id(8), direction: "outgoing" });
    // The withdrawal reaches Bob for a call he never took: dropped. Then the surviving call proceeds.
    expect(bob.receive({ userId: ALICE, deviceId: 1 }, sends(fx)[0])).toEqual([]);
    const ans = sends(alice.answer(id(8), "a-answer"))[0];
    expect(events(bob.receive({ userId: ALICE, deviceId: 1 }, ans))[0]).toMatchObject({ type: "callAnswer", callId: id(8) });
  });

  it("timeouts: the caller hangs up with timeout and leaves one missed call; the callee's own timer ends it locally", () => {
    const m = new CallMachine({ userId: ALICE, deviceId: 1 }, 1_000);
    m.offer(id(5), BOB, "v=0", true);
    const fx = m.timeout(id(5));
    expect(sends(fx)).toEqual([{ to: BOB, type: "hangup", callId: id(5), reason: "timeout" }]);
    expect(fx.filter((e) => e.kind === "missedCall")).toEqual([{ kind: "missedCall", to: BOB, callId: id(5), video: true }]);
    expect(ended(fx)).toEqual(["timeout"]);
    expect(m.timeout(id(5))).toEqual([]);
    const callee = ringing(1);
    expect(ended(callee.m.receive({ userId: ALICE, deviceId: 1 }, sends(fx)[0]))).toEqual(["timeout"]);
    const alone = ringing(2);
    expect(ended(alone.m.timeout(id(5)))).toEqual(["timeout"]);
    expect(sends(alone.m.timeout(id(5)))).toEqual([]);
  });

  it("hangup from either side; a caller who gives up before an answer leaves a missed call", () => {
    const { m } = ringing(1);
    m.answer(id(5), "a");
    expect(sends(m.hangup(id(5)))).toEqual([{ to: ALICE, type: "hangup", callId: id(5), reason: "hangup", toDevice: 1 }]);
    expect(m.hangup(id(5))).toEqual([]);
    const caller = new CallMachine({ userId: ALICE, deviceId: 1 });
    caller.offer(id(5), BOB, "v=0", false);
    caller.receive({ userId: BOB, deviceId: 1 }, { type: "answer", callId: id(5), sdp: "a", toDevice: 1 });
    expect(ended(caller.receive({ userId: BOB, deviceId: 1 }, { type: "hangup", callId: id(5), reason: "hangup", toDevice: 1 }))).toEqual(["hangup"]);
    const early = new CallMachine({ userId: ALICE, deviceId: 1 });
    early.offer(id(6), BOB, "v=0", false);
    expect(early.hangup(id(6)).filter((e) => e.kind === "missedCall")).toHaveLength(1);
  });

  it("drops signaling for unknown or ended calls, from strangers, and late offers for calls already over", () => {
    const m = new CallMachine({ userId: BOB, deviceId: 2 });
    expect(m.receive({ userId: ALICE, deviceId: 1 }, { type: "answer", callId: id(1), sdp: "x", toDevice: 2 })).toEqual([]);
    expect(m.receive({ userId: ALICE, deviceId: 1 }, { type: "hangup", callId: id(1), reason: "hangup" })).toEqual([]);
    m.receive({ userId: ALICE, deviceId: 1 }, { type: "offer", callId: id(2), sdp: "x", video: false });
    expect(m.receive({ userId: CAROL, deviceId: 1 }, { type: "hangup", callId: id(2), reason: "hangup" })).toEqual([]);
    expect(m.receive({ userId: ALICE, deviceId: 9 }, { type: "hangup", callId: id(2), reason: "hangup" })).toEqual([]);
    expect(ended(m.receive({ userId: ALICE, deviceId: 1 }, { type: "hangup", callId: id(2), reason: "hangup" }))).toEqual(["hangup"]);
    expect(m.receive({ userId: ALICE, deviceId: 1 }, { type: "offer", callId: id(2), sdp: "x", video: false })).toEqual([]);
    // The other device's answer overtook the offer: the offer must not ring afterwards.
    m.receive({ userId: BOB, deviceId: 1 }, { type: "answer", callId: id(3), sdp: "x", toDevice: 1 }, ALICE);
    expect(m.receive({ userId: ALICE, deviceId: 1 }, { type: "offer", callId: id(3), sdp: "x", video: false })).toEqual([]);
    expect(() => m.answer(id(4), "x")).toThrow(CallStateError);
  });

  it("checkSignal rebuilds well-formed signals and refuses malformed or oversized ones", () => {
    expect(checkSignal({ type: "ice", callId: id(1), candidates: [{ candidate: "c", extra: 1 }], evil: true })).toEqual({
      type: "ice",
      callId: id(1),
      candidates: [{ candidate: "c", sdpMid: null, sdpMLineIndex: null, usernameFragment: null }],
    });
    for (const bad of [
      null,
      { type: "offer", callId: "short", sdp: "x", video: false },
      { type: "offer", callId: id(1), sdp: "x".repeat(40_000), video: false },
      { type: "offer", callId: id(1), sdp: "x" },
      { type: "answer", callId: id(1), sdp: "x", toDevice: 0 },
      { type: "ice", callId: id(1), candidates: [] },
      { type: "ice", callId: id(1), candidates: Array(65).fill({ candidate: "c" }) },
      { type: "hangup", callId: id(1), reason: "whatever" },
      { type: "teleport", callId: id(1) },
    ]) {
      expect(() => checkSignal(bad)).toThrow(SignalError);
    }
  });
});
