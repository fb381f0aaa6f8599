// The attachment pointer: everything a recipient needs to fetch and decrypt a blob. It travels only inside the
// end-to-end encrypted message body; binary fields are base64 so a pointer is plain JSON (messages, local store).
import { KEY_BYTES } from "./crypto.ts";

export interface AttachmentPointer {
  /** The server's blob id: whoever holds it may download the ciphertext, never read it without the key. */
  id: string;
  /** 64 bytes, base64: AES-256 key ‖ HMAC-SHA256 key. */
  key: string;
  /** SHA-256 of the whole blob, base64. */
  digest: string;
  /** Plaintext bytes. */
  size: number;
  contentType: string;
  fileName?: string;
  width?: number;
  height?: number;
  durationMs?: number;
  /** A small inline preview, base64. */
  thumbnail?: string;
}

export const MAX_THUMBNAIL_BYTES = 16 * 1024;
const MAX_SIZE = 2 ** 40;

const b64 = (s: unknown, bytes: number | null, max = Infinity): Buffer | null => {
  if (typeof s !== "string" || s.length > Math.ceil(max / 3) * 4 + 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const buf = Buffer.from(s, "base64");
  if (bytes !== null && buf.length !== bytes) return null;
  return buf.length <= max ? buf : null;
};
const optNat = (x: unknown, max: number) => x === undefined || (Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= max);
const optStr = (x: unknown, max: number) => x === undefined || (typeof x === "string" && x.length <= max);

/** The pointer if `x` is a well-formed one, else null (a peer's message is untrusted input). */
export function checkPointer(x: unknown): AttachmentPointer | null {
  if (typeof x !== "object" || x === null) return null;
  const p = x as Record<string, unknown>;
  if (typeof p.id !== "string" || !/^[A-Za-z0-9_-]{16,64}$/.test(p.id)) return null;
  if (!b64(p.key, KEY_BYTES) || !b64(p.digest, 32)) return null;
  if (!Number.isSafeInteger(p.size) || (p.size as number) < 0 || (p.size as number) > MAX_SIZE) return null;
  if (typeof p.contentType !== "string" || p.contentType.length > 128) return null;
  if (!optStr(p.fileName, 255) || !optNat(p.width, 100_000) || !optNat(p.height, 100_000) || !optNat(p.durationMs, 2 ** 31)) return null;
  if (p.thumbnail !== undefined && !b64(p.thumbnail, null, MAX_THUMBNAIL_BYTES)) return null;
  const out: AttachmentPointer = { id: p.id, key: p.key as string, digest: p.digest as string, size: p.size as number, contentType: p.contentType };
  for (const k of ["fileName", "width", "height", "durationMs", "thumbnail"] as const) {
    if (p[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = p[k];
  }
  return out;
}

export function keyBytes(p: AttachmentPointer): Buffer {
  return Buffer.from(p.key, "base64");
}
export function digestBytes(p: AttachmentPointer): Buffer {
  return Buffer.from(p.digest, "base64");
}
