// Signal's attachment format, streamed: plaintext zero-padded to a size bucket, AES-256-CBC (PKCS#7) under the first
// half of a 64-byte key, HMAC-SHA256 under the second half over IV ‖ ciphertext, appended; the pointer carries the
// SHA-256 of the whole blob. Neither direction holds a whole file in memory.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { Transform, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

export const KEY_BYTES = 64;
const IV_BYTES = 16;
const MAC_BYTES = 32;
const BLOCK = 16;

/** Signal's buckets: sizes grow by 5% steps (at least 541 bytes), so a stored size tells little about the file's. */
export function paddedSize(size: number): number {
  if (size <= 541) return 541;
  // max with size: floating point must never make a bucket smaller than the file.
  return Math.max(size, Math.floor(1.05 ** Math.ceil(Math.log(size) / Math.log(1.05))));
}

/** Bytes on the server for a plaintext of `size`: IV, CBC ciphertext of the padded plaintext (PKCS#7), MAC. */
export function blobSize(size: number): number {
  return IV_BYTES + (Math.floor(paddedSize(size) / BLOCK) + 1) * BLOCK + MAC_BYTES;
}

export class AttachmentIntegrityError extends Error {
  override name = "AttachmentIntegrityError";
}

export interface Encrypted {
  key: Uint8Array;
  digest: Uint8Array;
  size: number;
  blobSize: number;
}

/** Counts the plaintext through and appends the zero padding at the end. */
function padder(expected: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > expected) return done(new Error("the file grew while it was being encrypted"));
      done(null, chunk);
    },
    flush(done) {
      if (seen !== expected) return done(new Error("the file changed size while it was being encrypted"));
      const pad = paddedSize(expected) - expected;
      // In 64 KiB pieces: a bucket's padding is at most 5% of the file, but the file may be large.
      for (let left = pad; left > 0; left -= 65536) this.push(Buffer.alloc(Math.min(left, 65536)));
      done();
    },
  });
}

/** Encrypts `source` (exactly `size` bytes) into `outFile`; returns the key, digest and sizes for the pointer. */
export async function encryptToFile(source: Readable, size: number, outFile: string): Promise<Encrypted> {
  const key = randomBytes(KEY_BYTES);
  const iv = randomBytes(IV_BYTES);
  const mac = createHmac("sha256", key.subarray(32)).update(iv);
  const digest = createHash("sha256").update(iv);
  const out = createWriteStream(outFile, { mode: 0o600 });
  out.write(iv);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      mac.update(chunk);
      digest.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const tag = mac.digest();
      digest.update(tag);
      done(null, tag);
    },
  });
  await pipeline(source, padder(size), createCipheriv("aes-256-cbc", key.subarray(0, 32), iv), tap, out);
  return { key, digest: digest.digest(), size, blobSize: blobSize(size) };
}

/**
 * Checks a blob against its pointer as its bytes go by, without decrypting: the SHA-256 of all of it, the HMAC over
 * all but its last 32 bytes (held back until the end). check() throws AttachmentIntegrityError on any mismatch
 * (a flipped byte, a cut-off or extended blob, another blob).
 */
export class BlobVerifier {
  private sha = createHash("sha256");
  private mac: ReturnType<typeof createHmac>;
  private held: Buffer = Buffer.alloc(0);
  length = 0;
  constructor(private key: Uint8Array) {
    this.mac = createHmac("sha256", key.subarray(32));
  }
  update(chunk: Buffer) {
    this.sha.update(chunk);
    this.length += chunk.length;
    const all = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const cut = Math.max(0, all.length - MAC_BYTES);
    this.mac.update(all.subarray(0, cut));
    this.held = Buffer.from(all.subarray(cut));
  }
  check(digest: Uint8Array, size: number) {
    const expected = blobSize(size);
    if (this.length !== expected) {
      throw new AttachmentIntegrityError(`attachment is ${this.length} bytes, its pointer says ${expected}: truncated or altered`);
    }
    if (!timingSafeEqual(this.sha.digest(), Buffer.from(digest))) throw new AttachmentIntegrityError("attachment digest does not match its pointer");
    if (!timingSafeEqual(this.mac.digest(), this.held)) throw new AttachmentIntegrityError("attachment MAC does not verify");
  }
}

/** Checks a blob file against its pointer (see BlobVerifier). */
export async function verifyFile(file: string, key: Uint8Array, digest: Uint8Array, size: number): Promise<void> {
  const v = new BlobVerifier(key);
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) v.update(chunk);
  v.check(digest, size);
}

/** Decrypts a verified blob file into `out`, cutting the padding off at `size`. */
export async function decryptFile(file: string, key: Uint8Array, size: number, out: Writable): Promise<void> {
  const handle = await open(file, "r");
  const iv = Buffer.alloc(IV_BYTES);
  let length: number;
  try {
    await handle.read(iv, 0, IV_BYTES, 0);
    length = (await handle.stat()).size;
  } finally {
    await handle.close();
  }
  let left = size;
  const cut = new Transform({
    transform(chunk: Buffer, _enc, done) {
      const keep = chunk.subarray(0, Math.max(0, Math.min(chunk.length, left)));
      left -= keep.length;
      done(null, keep.length ? keep : undefined);
    },
  });
  await pipeline(
    createReadStream(file, { start: IV_BYTES, end: length - MAC_BYTES - 1 }),
    createDecipheriv("aes-256-cbc", Buffer.from(key.subarray(0, 32)), iv),
    cut,
    out,
  );
  if (left !== 0) throw new AttachmentIntegrityError("attachment is shorter than its pointer says");
}
