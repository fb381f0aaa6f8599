// What travels inside the Signal encryption: a versioned, typed message body with the sender's timestamp, padded so
// the ciphertext length reveals only a 160-byte bucket. The server never sees any of this.
import { checkPointer, type AttachmentPointer } from "./attachments/pointer.ts";
import { CALL_ID_PATTERN, checkSignal, type CallSignal } from "./calls/signals.ts";

export const CONTENT_VERSION = 1;
export const PAD_BLOCK = 160;
/** Upper bound of a decoded content, so a hostile peer cannot make us parse megabytes of JSON. */
export const MAX_CONTENT_BYTES = 64 * 1024;
export const MAX_CAPTION = 4096;

/** Kinds whose body is an encrypted attachment's pointer (attachments/pointer.ts) and an optional caption. */
export const ATTACHMENT_KINDS = ["image", "video", "voice", "file"] as const;
export type AttachmentKind = (typeof ATTACHMENT_KINDS)[number];

export type MessageBody =
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

export type MessageKind = MessageBody["kind"];

/** Everything a user can send: a plain string is a text message. */
export type Sendable = MessageBody | string;

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
};

export interface Content {
  v: number;
  /** Sender's clock, milliseconds since the epoch. */
  sentAt: number;
  body: MessageBody;
  expiresInSeconds?: number;
  /** Only in sync copies to the sender's own devices: whom the original went to. */
  sentTo?: string;
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

function checkBody(b: Record<string, unknown>): MessageBody {
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
  }
  throw new ContentError(`unsupported or malformed message body (${String(b.kind)})`);
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
  if (!isNum(parsed.sentAt) || typeof parsed.body !== "object" || parsed.body === null) throw new ContentError("malformed content");
  const c: Content = { v: CONTENT_VERSION, sentAt: parsed.sentAt, body: checkBody(parsed.body as Record<string, unknown>) };
  if (isNum(parsed.expiresInSeconds) && parsed.expiresInSeconds > 0) c.expiresInSeconds = parsed.expiresInSeconds;
  if (isStr(parsed.sentTo, 64)) c.sentTo = parsed.sentTo;
  return c;
}
