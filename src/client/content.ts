// What travels inside the Signal encryption: a versioned, typed message body with the sender's timestamp, padded so
// the ciphertext length reveals only a 160-byte bucket. The server never sees any of this, only the message type.
import { checkPointer, type AttachmentPointer } from "./attachments/pointer.ts";
import { CALL_ID_PATTERN, checkSignal, type CallSignal } from "./calls/signals.ts";

export const CONTENT_VERSION = 1;
export const PAD_BLOCK = 160;
/** Upper bound of a decoded content, so a hostile peer cannot make us parse megabytes of JSON. */
export const MAX_CONTENT_BYTES = 64 * 1024;
/** Bounds of the small fields: a reaction is one emoji (a few code points with modifiers), a quote a snippet. */
export const MAX_EMOJI_LENGTH = 32;
export const MAX_SNIPPET_LENGTH = 200;
const MAX_ID_LENGTH = 64;
export const MAX_CAPTION = 4096;

/** Kinds whose body is an encrypted attachment's pointer (attachments/pointer.ts) and an optional caption. */
export const ATTACHMENT_KINDS = ["image", "video", "voice", "file"] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];

export type RsvpAnswer = "yes" | "no" | "maybe";

/** The kinds this SDK shows as messages of their own. */
export type DisplayBody =
  | { kind: "text"; text: string }
  | { kind: "noteToSelf"; text: string }
  | { kind: "location"; latitude: number; longitude: number; label?: string }
  | { kind: "contact"; name: string; username?: string; phone?: string; email?: string }
  | { kind: "poll"; question: string; options: string[]; multiple?: boolean }
  | { kind: "event"; title: string; startsAt: string; endsAt?: string; location?: string }
  | { kind: AttachmentKind; attachment: AttachmentPointer; caption?: string }
  /** Call signaling (src/client/calls/): sent live-only, never stored as a message. */
  | { kind: "call"; signal: CallSignal }
  /** Left by the caller's SDK when nobody answered: an ordinary queued message. */
  | { kind: "missedCall"; callId: string; video: boolean };

/** The kinds that change another message: folded into it, never shown on their own. */
export type ActionBody =
  /** emoji null takes this sender's reaction back. */
  | { kind: "reaction"; messageId: string; emoji: string | null }
  | { kind: "edit"; messageId: string; text: string }
  /** Indices into the poll's options; [] takes the vote back. */
  | { kind: "vote"; pollId: string; choices: number[] }
  | { kind: "rsvp"; eventId: string; answer: RsvpAnswer };

/** A kind from a newer client: kept as it came, so a later SDK version can still show it. */
export type UnsupportedBody = { kind: "unsupported"; originalKind: string; raw: Record<string, unknown> };

export type MessageBody = DisplayBody | ActionBody | UnsupportedBody;
export type MessageKind = MessageBody["kind"];
/** What an app passes to send(): anything but the marker for unknown kinds. */
export type SendableBody = DisplayBody | ActionBody;
/** Everything a user can send: a plain string is a text message. */
export type Sendable = SendableBody | string;

/** The server's MessageType for each kind (the server sees the type, never the body). */
export const serverMessageType: Record<MessageKind, string> = {
  text: "TEXT",
  noteToSelf: "TEXT",
  location: "LOCATION",
  contact: "CONTACT",
  poll: "POLL",
  event: "EVENT",
  image: "MEDIA",
  video: "MEDIA",
  voice: "VOICE",
  file: "FILE",
  call: "CALL",
  missedCall: "CALL",
  reaction: "REACTION",
  edit: "EDIT",
  vote: "POLL",
  rsvp: "EVENT",
  unsupported: "OTHER",
};

export const isAction = (b: MessageBody): b is ActionBody =>
  b.kind === "reaction" || b.kind === "edit" || b.kind === "vote" || b.kind === "rsvp";

/** A quoted message: its id and the start of its text as the sender saw it. */
export interface ReplyRef {
  messageId: string;
  snippet: string;
}

export interface Content {
  v: number;
  /** Sender's clock, milliseconds since the epoch. */
  sentAt: number;
  body: MessageBody;
  expiresInSeconds?: number;
  /** Only in sync copies to the sender's own devices: whom the original went to. */
  sentTo?: string;
  replyTo?: ReplyRef;
}

export class ContentError extends Error {}

/** Pads like Signal: 0x80, then zeros up to the next multiple of PAD_BLOCK (always at least one byte added). */
export function pad(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const size = Math.ceil((data.length + 1) / PAD_BLOCK) * PAD_BLOCK;
  const out = new Uint8Array(size);
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

export function unpad(data: Uint8Array): Uint8Array {
  let i = data.length - 1;
  while (i >= 0 && data[i] === 0) i--;
  if (i < 0 || data[i] !== 0x80) throw new ContentError("bad padding");
  return data.subarray(0, i);
}

export function encodeContent(c: Omit<Content, "v">): Uint8Array<ArrayBuffer> {
  const json = Buffer.from(JSON.stringify({ v: CONTENT_VERSION, ...c }), "utf8");
  if (json.length > MAX_CONTENT_BYTES) throw new ContentError(`message is larger than ${MAX_CONTENT_BYTES} bytes`);
  return pad(json);
}

const isStr = (x: unknown, max = 4096): x is string => typeof x === "string" && x.length <= max;
const optStr = (x: unknown, max = 4096) => x === undefined || isStr(x, max);
const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const isId = (x: unknown): x is string => isStr(x, MAX_ID_LENGTH) && x.length > 0;
const RSVP = new Set(["yes", "no", "maybe"]);
const KNOWN = new Set(Object.keys(serverMessageType).filter((k) => k !== "unsupported"));

function checkAction(b: Record<string, unknown>): ActionBody | null {
  switch (b.kind) {
    case "reaction":
      if (isId(b.messageId) && (b.emoji === null || (isStr(b.emoji, MAX_EMOJI_LENGTH) && b.emoji.length > 0)))
        return { kind: "reaction", messageId: b.messageId, emoji: b.emoji };
      break;
    case "edit":
      if (isId(b.messageId) && isStr(b.text, MAX_CONTENT_BYTES)) return { kind: "edit", messageId: b.messageId, text: b.text };
      break;
    case "vote":
      if (isId(b.pollId) && Array.isArray(b.choices) && b.choices.length <= 32 && b.choices.every((c) => Number.isInteger(c) && c >= 0 && c < 32))
        return { kind: "vote", pollId: b.pollId, choices: [...new Set(b.choices as number[])].sort((x, y) => x - y) };
      break;
    case "rsvp":
      if (isId(b.eventId) && typeof b.answer === "string" && RSVP.has(b.answer)) return { kind: "rsvp", eventId: b.eventId, answer: b.answer as RsvpAnswer };
      break;
  }
  return null;
}

/** Checks a body; a kind this version does not know becomes `unsupported`, a known kind out of shape is an error. */
export function checkBody(b: Record<string, unknown>): MessageBody {
  switch (b.kind) {
    case "text":
    case "noteToSelf":
      if (isStr(b.text, MAX_CONTENT_BYTES)) return { kind: b.kind, text: b.text };
      break;
    case "location":
      if (isNum(b.latitude) && isNum(b.longitude) && Math.abs(b.latitude) <= 90 && Math.abs(b.longitude) <= 180 && optStr(b.label))
        return b as MessageBody;
      break;
    case "contact":
      if (isStr(b.name) && optStr(b.username) && optStr(b.phone) && optStr(b.email)) return b as MessageBody;
      break;
    case "poll":
      if (isStr(b.question) && Array.isArray(b.options) && b.options.length >= 2 && b.options.length <= 32 && b.options.every((o) => isStr(o)))
        return b as MessageBody;
      break;
    case "event":
      if (isStr(b.title) && isStr(b.startsAt, 64) && optStr(b.endsAt, 64) && optStr(b.location)) return b as MessageBody;
      break;
    case "reaction":
    case "edit":
    case "vote":
    case "rsvp": {
      const action = checkAction(b);
      if (action) return action;
      break;
    }
    case "image":
    case "video":
    case "voice":
    case "file": {
      const attachment = checkPointer(b.attachment);
      if (attachment && optStr(b.caption, MAX_CAPTION)) {
        return { kind: b.kind, attachment, ...(b.caption !== undefined ? { caption: b.caption as string } : {}) };
      }
      break;
    }
    case "call":
      try {
        return { kind: "call", signal: checkSignal(b.signal) };
      } catch {
        break;
      }
    case "missedCall":
      if (isStr(b.callId, 64) && CALL_ID_PATTERN.test(b.callId) && typeof b.video === "boolean") {
        return { kind: "missedCall", callId: b.callId, video: b.video };
      }
      break;
    default:
      if (isStr(b.kind, MAX_ID_LENGTH) && !KNOWN.has(b.kind) && b.kind !== "unsupported")
        return { kind: "unsupported", originalKind: b.kind, raw: b };
  }
  throw new ContentError(`malformed message body (${String(b.kind).slice(0, MAX_ID_LENGTH)})`);
}

/** What this device is about to send must pass the receiver's checks: one rule for both ends. */
export function checkOutgoing(body: SendableBody): SendableBody {
  const checked = checkBody(body as unknown as Record<string, unknown>);
  if (checked.kind === "unsupported") throw new ContentError(`unknown message kind ${String(body.kind).slice(0, MAX_ID_LENGTH)}`);
  return body;
}

function checkReply(x: unknown): ReplyRef | undefined {
  const r = x as Record<string, unknown> | null;
  if (typeof r !== "object" || r === null || !isId(r.messageId) || !isStr(r.snippet, MAX_SNIPPET_LENGTH)) return undefined;
  return { messageId: r.messageId, snippet: r.snippet };
}

/** Decodes and checks a decrypted content; a version from the future is rejected rather than half understood. */
export function decodeContent(plaintext: Uint8Array): Content {
  if (plaintext.length > MAX_CONTENT_BYTES + PAD_BLOCK) throw new ContentError("content too large");
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(Buffer.from(unpad(plaintext)).toString("utf8"));
  } catch (err) {
    throw err instanceof ContentError ? err : new ContentError("content is not valid JSON");
  }
  if (parsed?.v !== CONTENT_VERSION) throw new ContentError(`unsupported content version ${String(parsed?.v)}`);
  if (!isNum(parsed.sentAt) || typeof parsed.body !== "object" || parsed.body === null || Array.isArray(parsed.body))
    throw new ContentError("malformed content");
  const c: Content = { v: CONTENT_VERSION, sentAt: parsed.sentAt, body: checkBody(parsed.body as Record<string, unknown>) };
  if (isNum(parsed.expiresInSeconds) && parsed.expiresInSeconds > 0) c.expiresInSeconds = parsed.expiresInSeconds;
  if (isStr(parsed.sentTo, 64)) c.sentTo = parsed.sentTo;
  const reply = checkReply(parsed.replyTo);
  if (reply) c.replyTo = reply;
  return c;
}
