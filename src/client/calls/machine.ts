// The 1:1 call state machine, pure: inputs are the app's actions, decrypted signals and timer expiries; outputs are
// effects (signals to send, events to emit, timers to arm) that src/client/calls/calls.ts carries out. No I/O, no
// clock, no randomness here, so every rule (ringing, answered/declined elsewhere, busy, glare, timeouts, dropping
// what belongs to no known call) is unit-tested by feeding inputs and reading effects.
import type { CallSignal, EndReason, IceCandidate } from "./signals.ts";

export interface Address {
  userId: string;
  deviceId: number;
}

export type CallEvent =
  | { type: "callOffer"; callId: string; from: Address; sdp: string; video: boolean }
  | { type: "callAnswer"; callId: string; from: Address; sdp: string }
  | { type: "callIce"; callId: string; from: Address; candidates: IceCandidate[] }
  /** local: this device ended it (hangup, decline, its own timeout, lost glare); otherwise the other side did. */
  | { type: "callEnded"; callId: string; peerUserId: string; reason: EndReason; local: boolean };

export type Effect =
  /** An online (live-only) signal to every device of `to`, with sync copies to this account's other devices. */
  | { kind: "send"; to: string; signal: CallSignal }
  /** The ordinary queued message a call nobody answered leaves for the callee. */
  | { kind: "missedCall"; to: string; callId: string; video: boolean }
  | { kind: "emit"; event: CallEvent }
  | { kind: "arm"; callId: string; ms: number }
  | { kind: "disarm"; callId: string };

interface Call {
  callId: string;
  peer: string;
  direction: "outgoing" | "incoming";
  phase: "ringing" | "connected";
  video: boolean;
  /** incoming: the caller's device; outgoing: the device that answered (null while ringing). */
  peerDevice: number | null;
  /** outgoing, while ringing: ICE from callee devices that have not answered yet, handed over with the answer. */
  early: Map<number, IceCandidate[]>;
}

export class CallStateError extends Error {
  constructor(
    message: string,
    readonly code: "BUSY" | "NO_SUCH_CALL" | "BAD_STATE",
  ) {
    super(message);
  }
}

export const DEFAULT_RING_TIMEOUT_MS = 60_000;
/** Early ICE kept per ringing callee device (a browser gathers a handful). */
const MAX_EARLY_ICE = 64;
/** Ended call ids remembered, so late or repeated signals for them are dropped. */
const ENDED_CAP = 256;

export class CallMachine {
  private calls = new Map<string, Call>();
  private ended: string[] = [];

  constructor(
    private readonly self: Address,
    private readonly ringTimeoutMs = DEFAULT_RING_TIMEOUT_MS,
  ) {}

  /** The callee rings a little longer than the caller waits, so the caller's timeout hangup normally ends it. */
  get incomingRingMs(): number {
    return this.ringTimeoutMs + Math.min(10_000, Math.ceil(this.ringTimeoutMs / 4));
  }

  /** The call this device is in (ringing or connected), if any. */
  active(): { callId: string; peerUserId: string; direction: Call["direction"]; phase: Call["phase"] } | null {
    for (const c of this.calls.values()) return { callId: c.callId, peerUserId: c.peer, direction: c.direction, phase: c.phase };
    return null;
  }

  // ---- the app's actions -------------------------------------------------------------------------------------

  offer(callId: string, peer: string, sdp: string, video: boolean): Effect[] {
    if (peer === this.self.userId) throw new CallStateError("cannot call your own account", "BAD_STATE");
    if (this.calls.size > 0) throw new CallStateError("already in a call", "BUSY");
    if (this.calls.has(callId) || this.ended.includes(callId)) throw new CallStateError("call id already used", "BAD_STATE");
    this.calls.set(callId, { callId, peer, direction: "outgoing", phase: "ringing", video, peerDevice: null, early: new Map() });
    return [
      { kind: "send", to: peer, signal: { type: "offer", callId, sdp, video } },
      { kind: "arm", callId, ms: this.ringTimeoutMs },
    ];
  }

  answer(callId: string, sdp: string): Effect[] {
    const c = this.need(callId);
    if (c.direction !== "incoming" || c.phase !== "ringing") throw new CallStateError("only a ringing incoming call can be answered", "BAD_STATE");
    c.phase = "connected";
    return [
      { kind: "disarm", callId },
      { kind: "send", to: c.peer, signal: { type: "answer", callId, sdp, toDevice: c.peerDevice! } },
    ];
  }

  decline(callId: string): Effect[] {
    const c = this.need(callId);
    if (c.direction !== "incoming" || c.phase !== "ringing") throw new CallStateError("only a ringing incoming call can be declined", "BAD_STATE");
    return [{ kind: "send", to: c.peer, signal: { type: "decline", callId, toDevice: c.peerDevice! } }, ...this.end(c, "declined", true)];
  }

  ice(callId: string, candidates: IceCandidate[]): Effect[] {
    const c = this.need(callId);
    // Before an answer the caller's candidates go to every ringing device; after it, to the one in the call.
    const to = c.peerDevice === null ? {} : { toDevice: c.peerDevice };
    return [{ kind: "send", to: c.peer, signal: { type: "ice", callId, candidates, ...to } }];
  }

  /** Ends the call from this side; a call already over is not an error (hang-up buttons get pressed twice). */
  hangup(callId: string): Effect[] {
    const c = this.calls.get(callId);
    if (!c) return [];
    if (c.direction === "incoming" && c.phase === "ringing") return this.decline(callId);
    if (c.direction === "outgoing" && c.phase === "ringing") {
      return [
        { kind: "send", to: c.peer, signal: { type: "hangup", callId, reason: "hangup" } },
        { kind: "missedCall", to: c.peer, callId, video: c.video },
        ...this.end(c, "hangup", true),
      ];
    }
    return [{ kind: "send", to: c.peer, signal: { type: "hangup", callId, reason: "hangup", toDevice: c.peerDevice! } }, ...this.end(c, "hangup", true)];
  }

  /** A timer armed by an "arm" effect fired. */
  timeout(callId: string): Effect[] {
    const c = this.calls.get(callId);
    if (!c || c.phase !== "ringing") return [];
    if (c.direction === "incoming") return this.end(c, "timeout", true);
    return [
      { kind: "send", to: c.peer, signal: { type: "hangup", callId, reason: "timeout" } },
      { kind: "missedCall", to: c.peer, callId, video: c.video },
      ...this.end(c, "timeout", true),
    ];
  }

  /** Forgets a call whose offer could not be sent (nothing reached anyone). */
  abandon(callId: string): Effect[] {
    const c = this.calls.get(callId);
    if (!c) return [];
    this.calls.delete(callId);
    this.remember(callId);
    return [{ kind: "disarm", callId }];
  }

  // ---- signals from the server -------------------------------------------------------------------------------

  /** A decrypted signal from `from`; `sentTo` is set on a sync copy (from this account's other device). */
  receive(from: Address, signal: CallSignal, sentTo?: string): Effect[] {
    if (from.userId === this.self.userId) return from.deviceId === this.self.deviceId ? [] : this.fromOwnDevice(signal, sentTo);
    if (signal.type === "offer") return this.onOffer(from, signal);
    const c = this.calls.get(signal.callId);
    // Signals for calls this device does not know, has ended, or that are meant for another device are dropped.
    if (!c || c.peer !== from.userId) return [];
    if (signal.toDevice !== undefined && signal.toDevice !== this.self.deviceId) return [];
    if (c.peerDevice !== null && c.peerDevice !== from.deviceId) {
      // A second callee device answering after another one did is told it lost.
      if (signal.type === "answer" && c.direction === "outgoing") {
        return [{ kind: "send", to: c.peer, signal: { type: "hangup", callId: c.callId, reason: "answeredElsewhere", toDevice: from.deviceId } }];
      }
      return [];
    }
    switch (signal.type) {
      case "answer":
        if (c.direction !== "outgoing" || c.phase !== "ringing") return [];
        c.phase = "connected";
        c.peerDevice = from.deviceId;
        return [
          { kind: "disarm", callId: c.callId },
          { kind: "emit", event: { type: "callAnswer", callId: c.callId, from, sdp: signal.sdp } },
          ...this.earlyIce(c, from),
        ];
      case "ice":
        if (c.peerDevice === null) {
          const held = c.early.get(from.deviceId) ?? [];
          c.early.set(from.deviceId, held.concat(signal.candidates).slice(0, MAX_EARLY_ICE));
          return [];
        }
        return [{ kind: "emit", event: { type: "callIce", callId: c.callId, from, candidates: signal.candidates } }];
      case "hangup": {
        const reason: EndReason = signal.reason;
        // Only the caller may say "answered elsewhere", and only to a ringing callee device.
        if (reason === "answeredElsewhere" && c.direction !== "incoming") return [];
        return this.end(c, reason, false);
      }
      case "decline":
        return c.direction === "outgoing" && c.phase === "ringing" ? this.end(c, "declined", false) : [];
      case "busy":
        return c.direction === "outgoing" && c.phase === "ringing" ? this.end(c, "busy", false) : [];
    }
  }

  private onOffer(from: Address, offer: Extract<CallSignal, { type: "offer" }>): Effect[] {
    const { callId } = offer;
    if (this.calls.has(callId) || this.ended.includes(callId)) return [];
    const out: Effect[] = [];
    const current = [...this.calls.values()][0];
    if (current) {
      const glare = current.direction === "outgoing" && current.phase === "ringing" && current.peer === from.userId;
      if (!glare) {
        this.remember(callId);
        return [{ kind: "send", to: from.userId, signal: { type: "busy", callId, toDevice: from.deviceId } }];
      }
      // Both called each other at once. The larger call id wins on both sides, so exactly one call survives: the
      // loser withdraws its own offer (its other ringing devices stop) and takes the incoming one instead.
      if (callId < current.callId) return [];
      out.push({ kind: "send", to: current.peer, signal: { type: "hangup", callId: current.callId, reason: "hangup" } });
      out.push(...this.end(current, "glare", true));
    }
    this.calls.set(callId, {
      callId,
      peer: from.userId,
      direction: "incoming",
      phase: "ringing",
      video: offer.video,
      peerDevice: from.deviceId,
      early: new Map(),
    });
    out.push({ kind: "arm", callId, ms: this.incomingRingMs });
    out.push({ kind: "emit", event: { type: "callOffer", callId, from, sdp: offer.sdp, video: offer.video } });
    return out;
  }

  /** Sync copies of what another device of this account sent: how the other devices learn it was dealt with. */
  private fromOwnDevice(signal: CallSignal, sentTo?: string): Effect[] {
    const reason = ({ answer: "answeredElsewhere", decline: "declinedElsewhere", busy: "busy" } as const)[signal.type as "answer"];
    if (!reason) return [];
    const c = this.calls.get(signal.callId);
    if (!c) {
      // It may overtake the offer itself: remember the call as over so a late offer does not ring.
      this.remember(signal.callId);
      return [];
    }
    if (c.direction !== "incoming" || c.phase !== "ringing" || (sentTo !== undefined && sentTo !== c.peer)) return [];
    return this.end(c, reason, false);
  }

  private earlyIce(c: Call, from: Address): Effect[] {
    const held = c.early.get(from.deviceId);
    c.early.clear();
    return held?.length ? [{ kind: "emit", event: { type: "callIce", callId: c.callId, from, candidates: held } }] : [];
  }

  private end(c: Call, reason: EndReason, local: boolean): Effect[] {
    this.calls.delete(c.callId);
    this.remember(c.callId);
    return [
      { kind: "disarm", callId: c.callId },
      { kind: "emit", event: { type: "callEnded", callId: c.callId, peerUserId: c.peer, reason, local } },
    ];
  }

  private remember(callId: string) {
    this.ended.push(callId);
    if (this.ended.length > ENDED_CAP) this.ended.splice(0, this.ended.length - ENDED_CAP);
  }

  private need(callId: string): Call {
    const c = this.calls.get(callId);
    if (!c) throw new CallStateError(`no such call ${callId}`, "NO_SUCH_CALL");
    return c;
  }
}
