// Call signaling messages as they travel inside the Signal encryption (content kind "call"), and the checks a
// decoded one must pass: a hostile peer controls every field, so each is typed and bounded before the state machine
// sees it.
export type EndReason = "hangup" | "answeredElsewhere" | "declinedElsewhere" | "busy" | "timeout" | "declined" | "glare";

/** RTCIceCandidateInit, as the browser gives it. */
export interface IceCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/**
 * toDevice names the one device of the recipient a signal is for (the device that answered, or the caller's device);
 * absent, every device of the recipient is meant (an offer, ICE or a hangup before anyone answered).
 */
export type CallSignal =
  | { type: "offer"; callId: string; sdp: string; video: boolean }
  | { type: "answer"; callId: string; sdp: string; toDevice: number }
  | { type: "ice"; callId: string; candidates: IceCandidate[]; toDevice?: number }
  | { type: "hangup"; callId: string; reason: "hangup" | "timeout" | "answeredElsewhere"; toDevice?: number }
  | { type: "decline"; callId: string; toDevice: number }
  | { type: "busy"; callId: string; toDevice: number };

export const MAX_SDP_CHARS = 32 * 1024;
export const MAX_CANDIDATES = 64;
export const MAX_CANDIDATE_CHARS = 1024;
const CALL_ID = /^[0-9a-f]{32}$/;

export class SignalError extends Error {}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isDevice = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 127;
const optStr = (x: unknown, max: number) => x === undefined || x === null || (typeof x === "string" && x.length <= max);

function checkCandidate(c: unknown): IceCandidate {
  if (!isObj(c) || typeof c.candidate !== "string" || c.candidate.length > MAX_CANDIDATE_CHARS) throw new SignalError("bad candidate");
  if (!optStr(c.sdpMid, 64) || !optStr(c.usernameFragment, 256)) throw new SignalError("bad candidate");
  const line = c.sdpMLineIndex;
  if (!(line === undefined || line === null || (Number.isInteger(line) && (line as number) >= 0 && (line as number) < 1024))) {
    throw new SignalError("bad candidate");
  }
  return {
    candidate: c.candidate,
    sdpMid: (c.sdpMid as string | null | undefined) ?? null,
    sdpMLineIndex: (line as number | null | undefined) ?? null,
    usernameFragment: (c.usernameFragment as string | null | undefined) ?? null,
  };
}

/** A decoded signal, re-built field by field (nothing unchecked passes through). */
export function checkSignal(s: unknown): CallSignal {
  if (!isObj(s) || typeof s.callId !== "string" || !CALL_ID.test(s.callId)) throw new SignalError("bad call signal");
  const callId = s.callId;
  const sdp = () => {
    if (typeof s.sdp !== "string" || s.sdp.length === 0 || s.sdp.length > MAX_SDP_CHARS) throw new SignalError("bad sdp");
    return s.sdp;
  };
  const to = () => {
    if (!isDevice(s.toDevice)) throw new SignalError("bad toDevice");
    return s.toDevice;
  };
  const optTo = () => (s.toDevice === undefined ? {} : { toDevice: to() });
  switch (s.type) {
    case "offer":
      if (typeof s.video !== "boolean") break;
      return { type: "offer", callId, sdp: sdp(), video: s.video };
    case "answer":
      return { type: "answer", callId, sdp: sdp(), toDevice: to() };
    case "ice":
      if (!Array.isArray(s.candidates) || s.candidates.length === 0 || s.candidates.length > MAX_CANDIDATES) break;
      return { type: "ice", callId, candidates: s.candidates.map(checkCandidate), ...optTo() };
    case "hangup":
      if (s.reason !== "hangup" && s.reason !== "timeout" && s.reason !== "answeredElsewhere") break;
      return { type: "hangup", callId, reason: s.reason, ...optTo() };
    case "decline":
    case "busy":
      return { type: s.type, callId, toDevice: to() };
  }
  throw new SignalError(`bad call signal (${String(s.type)})`);
}

export { CALL_ID as CALL_ID_PATTERN };
