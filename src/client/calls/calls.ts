// client.calls: the app's side of 1:1 call signaling. The app owns WebRTC (RTCPeerConnection); this carries its SDP
// and ICE candidates Signal-encrypted as live-only messages, runs the CallMachine's effects (sends, events, ring
// timers), leaves a queued "missed call" message when nobody answered, and fetches TURN credentials.
import { randomBytes } from "node:crypto";
import { CallMachine, DEFAULT_RING_TIMEOUT_MS, type Address, type CallEvent, type Effect } from "./machine.ts";
import { checkSignal, type CallSignal, type IceCandidate } from "./signals.ts";
import { Mutex } from "../emitter.ts";

export interface CallsOptions {
  /** How long an outgoing call rings before it ends as "timeout" (default 60 s). */
  ringTimeoutMs?: number;
}

/** An RTCIceServer entry with its expiry. */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
  expiresAt: string;
}

/** What Calls needs from the client it belongs to. */
export interface CallsHost {
  self: Address;
  resolveUser(who: string): Promise<string>;
  /** Online (live-only) send of a signal to every device of `to`, sync copies to this account's other devices. */
  sendSignal(to: string, signal: CallSignal): Promise<void>;
  /** An ordinary queued message. */
  sendMissedCall(to: string, callId: string, video: boolean): Promise<void>;
  emit(event: CallEvent): Promise<void>;
  fail(err: unknown): void;
  turnServers(): Promise<IceServer[]>;
}

export class Calls {
  private machine: CallMachine;
  private timers = new Map<string, NodeJS.Timeout>();
  // Effects run one input at a time, in order: an answer's ICE never overtakes the answer.
  private queue = new Mutex();
  private closed = false;

  constructor(
    private host: CallsHost,
    options: CallsOptions = {},
  ) {
    this.machine = new CallMachine(host.self, options.ringTimeoutMs ?? DEFAULT_RING_TIMEOUT_MS);
  }

  /** Rings every device of `who`; resolves once the offer was handed to the server. */
  async offer(who: string, opts: { sdp: string; video?: boolean }): Promise<{ callId: string }> {
    const peer = await this.host.resolveUser(who);
    const callId = randomBytes(16).toString("hex");
    try {
      await this.step(() => this.machine.offer(callId, peer, opts.sdp, opts.video ?? false));
    } catch (err) {
      await this.step(() => this.machine.abandon(callId));
      throw err;
    }
    return { callId };
  }

  async answer(callId: string, opts: { sdp: string }): Promise<void> {
    await this.step(() => this.machine.answer(callId, opts.sdp));
  }

  async decline(callId: string): Promise<void> {
    await this.step(() => this.machine.decline(callId));
  }

  /** Trickled candidates (RTCIceCandidate.toJSON()), batched as the app likes. */
  async ice(callId: string, candidates: IceCandidate[]): Promise<void> {
    if (candidates.length === 0) return;
    await this.step(() => this.machine.ice(callId, candidates));
  }

  async hangup(callId: string): Promise<void> {
    await this.step(() => this.machine.hangup(callId));
  }

  /** The call this device is in, if any. */
  current() {
    return this.machine.active();
  }

  /** RTCIceServer entries for RTCPeerConnection (empty when the server has no TURN configured). */
  async turnServers(): Promise<IceServer[]> {
    return this.host.turnServers();
  }

  /** A decrypted call signal from the inbox (content kind "call"); malformed ones are dropped. */
  async receive(from: Address, raw: unknown, sentTo?: string): Promise<void> {
    let signal: CallSignal;
    try {
      signal = checkSignal(raw);
    } catch {
      return;
    }
    await this.step(() => this.machine.receive(from, signal, sentTo));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * Feeds one input to the machine and carries out its effects in order. Events go to
   * the app after the queue is released: a callOffer handler that awaits calls.answer() must not wait on itself.
   */
  private async step(input: () => Effect[]): Promise<void> {
    const events: CallEvent[] = [];
    let failure: { err: unknown } | null = null;
    await this.queue.run(async () => {
      // The machine has already moved on: a failed send must not also swallow the rest (the missed-call message,
      // the callEnded event), so every effect is tried and the first failure is reported after.
      for (const e of input()) {
        if (e.kind === "emit") events.push(e.event);
        else await this.apply(e).catch((err: unknown) => void (failure ??= { err }));
      }
    });
    for (const ev of events) await this.host.emit(ev);
    if (failure) throw (failure as { err: unknown }).err;
  }

  private async apply(e: Exclude<Effect, { kind: "emit" }>): Promise<void> {
    switch (e.kind) {
      case "send":
        return this.host.sendSignal(e.to, e.signal);
      case "missedCall":
        return this.host.sendMissedCall(e.to, e.callId, e.video);
      case "arm": {
        if (this.closed) return;
        this.clear(e.callId);
        const t = setTimeout(() => {
          this.timers.delete(e.callId);
          this.step(() => this.machine.timeout(e.callId)).catch((err) => this.host.fail(err));
        }, e.ms);
        t.unref();
        this.timers.set(e.callId, t);
        return;
      }
      case "disarm":
        return this.clear(e.callId);
    }
  }

  private clear(callId: string) {
    const t = this.timers.get(callId);
    if (t) clearTimeout(t);
    this.timers.delete(callId);
  }
}
