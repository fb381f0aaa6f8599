// client.attachments: encrypt on the device, upload resumably (tus-js-client), download with resume over Range,
// verify the digest and MAC before a single plaintext byte is returned or written.
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Upload } from "tus-js-client";
import { CreateAttachmentUploadDocument } from "../generated/graphql.ts";
import { VignetteError, wrap } from "../errors.ts";
import type { HttpTransport } from "../transport.ts";
import { AttachmentIntegrityError, BlobVerifier, blobSize, decryptFile, encryptToFile } from "./crypto.ts";
import { checkPointer, digestBytes, keyBytes, MAX_THUMBNAIL_BYTES, type AttachmentPointer } from "./pointer.ts";

export { AttachmentIntegrityError };
export type { AttachmentPointer };

/** Bytes per tus PATCH: one S3 part each on the default S3 store, and the most a dropped connection re-sends. */
export const CHUNK_BYTES = 8 * 1024 * 1024;
const RETRY_DELAYS_MS = [0, 500, 1000, 2000, 4000, 8000];
const DOWNLOAD_ATTEMPTS = 6;

export interface Progress {
  bytesSent: number;
  bytesTotal: number;
}

export interface UploadOptions {
  contentType: string;
  fileName?: string;
  width?: number;
  height?: number;
  durationMs?: number;
  /** A small preview (a few KiB), carried inside the encrypted message itself. */
  thumbnail?: Uint8Array;
  onProgress?: (p: Progress) => void;
}

export class Attachments {
  constructor(
    private http: HttpTransport,
    /** Where ciphertext is staged while it goes up or comes down (inside the account directory). */
    private tmpDir: string,
  ) {}

  private get origin() {
    return new URL(this.http.url).origin;
  }

  private tempFile(tag: string) {
    return path.join(this.tmpDir, `${tag}-${randomBytes(8).toString("hex")}`);
  }

  /** Encrypts and uploads bytes or a file; the returned pointer goes into a message (kinds image, video, voice, file). */
  async upload(input: Uint8Array | string, options: UploadOptions): Promise<AttachmentPointer> {
    if (options.thumbnail && options.thumbnail.length > MAX_THUMBNAIL_BYTES) {
      throw new VignetteError(`a thumbnail may have at most ${MAX_THUMBNAIL_BYTES} bytes`, "BAD_USER_INPUT");
    }
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const size = typeof input === "string" ? (await stat(input)).size : input.length;
    const source = typeof input === "string" ? createReadStream(input) : Readable.from([Buffer.from(input)]);
    const blob = this.tempFile("up");
    try {
      const enc = await encryptToFile(source, size, blob);
      const grant = await wrap(() =>
        this.http.request(CreateAttachmentUploadDocument, {
          input: { size: enc.blobSize, contentType: "application/octet-stream" },
        }),
      );
      const { id, uploadUrl } = grant.createAttachmentUpload;
      await this.send(new URL(uploadUrl, this.origin).toString(), blob, enc.blobSize, options.onProgress);
      return {
        id,
        key: Buffer.from(enc.key).toString("base64"),
        digest: Buffer.from(enc.digest).toString("base64"),
        size,
        contentType: options.contentType,
        ...(options.fileName !== undefined ? { fileName: options.fileName } : {}),
        ...(options.width !== undefined ? { width: options.width } : {}),
        ...(options.height !== undefined ? { height: options.height } : {}),
        ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
        ...(options.thumbnail !== undefined ? { thumbnail: Buffer.from(options.thumbnail).toString("base64") } : {}),
      };
    } finally {
      await rm(blob, { force: true });
    }
  }

  private send(url: string, file: string, total: number, onProgress?: (p: Progress) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const upload = new Upload(createReadStream(file), {
        // The upload exists already (granted): resume it, never create one.
        uploadUrl: url,
        uploadSize: total,
        chunkSize: CHUNK_BYTES,
        retryDelays: RETRY_DELAYS_MS,
        headers: { authorization: `Bearer ${this.http.token}` },
        storeFingerprintForResuming: false,
        removeFingerprintOnSuccess: true,
        onProgress: (bytesSent, bytesTotal) => onProgress?.({ bytesSent, bytesTotal }),
        onSuccess: () => resolve(),
        onError: (err) => {
          const e = err as Error & { originalResponse?: { getStatus(): number; getBody(): string } | null };
          const body = e.originalResponse?.getBody();
          let code: string | undefined;
          try {
            code = body ? (JSON.parse(body) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code : undefined;
          } catch {
            code = undefined;
          }
          reject(new VignetteError(`attachment upload failed: ${e.message.split("\n")[0]}`, code ?? "UNREACHABLE"));
        },
      });
      upload.start();
    });
  }

  /**
   * Downloads, verifies and decrypts an attachment. With `to`, writes the plaintext to that file (only after the
   * blob verified; the file appears whole or not at all) and returns its path; otherwise returns the bytes.
   */
  async download(pointer: AttachmentPointer, options: { to: string; onProgress?: (p: Progress) => void }): Promise<string>;
  async download(pointer: AttachmentPointer, options?: { onProgress?: (p: Progress) => void }): Promise<Uint8Array>;
  async download(pointer: AttachmentPointer, options: { to?: string; onProgress?: (p: Progress) => void } = {}): Promise<string | Uint8Array> {
    const p = checkPointer(pointer);
    if (!p) throw new VignetteError("not an attachment pointer", "BAD_USER_INPUT");
    const key = keyBytes(p);
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const blob = this.tempFile("down");
    try {
      // Checked as it arrives, so the blob is read once more only to decrypt it.
      const verifier = await this.fetchBlob(p.id, blob, blobSize(p.size), key, options.onProgress);
      verifier.check(digestBytes(p), p.size);
      if (options.to) {
        const partial = `${options.to}.${randomBytes(4).toString("hex")}.partial`;
        try {
          await decryptFile(blob, key, p.size, createWriteStream(partial, { mode: 0o600 }));
          await rename(partial, options.to);
        } finally {
          await rm(partial, { force: true });
        }
        return options.to;
      }
      const parts: Buffer[] = [];
      await decryptFile(blob, key, p.size, new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) }));
      return new Uint8Array(Buffer.concat(parts));
    } finally {
      await rm(blob, { force: true });
    }
  }

  /** GETs the blob into a file, resuming with Range after a dropped connection. */
  private async fetchBlob(id: string, file: string, expected: number, key: Uint8Array, onProgress?: (p: Progress) => void) {
    let verifier = new BlobVerifier(key);
    let have = 0;
    let lastError: unknown = null;
    // Answers that brought no new byte: the server's blob is shorter than the pointer, not a flaky network.
    let stalls = 0;
    for (let attempt = 0; attempt < DOWNLOAD_ATTEMPTS && have < expected; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]));
      let res: Response;
      try {
        res = await fetch(`${this.origin}/attachments/${id}`, {
          headers: { authorization: `Bearer ${this.http.token}`, ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
        });
      } catch (err) {
        lastError = err;
        continue;
      }
      if (res.status === 404) throw new VignetteError("attachment not found (expired or never uploaded)", "NOT_FOUND");
      if (res.status === 416) throw new AttachmentIntegrityError("attachment on the server is shorter than its pointer says");
      if (res.status !== 200 && res.status !== 206) {
        const code = res.status === 401 ? "UNAUTHENTICATED" : res.status === 429 ? "RATE_LIMITED" : "UNAVAILABLE";
        if (res.status < 500) throw new VignetteError(`attachment download refused (HTTP ${res.status})`, code);
        lastError = new VignetteError(`attachment download failed (HTTP ${res.status})`, code);
        continue;
      }
      // A server that ignored the Range header sends the whole blob again.
      if (res.status === 200 && have > 0) [have, verifier] = [0, new BlobVerifier(key)];
      const out = createWriteStream(file, { flags: have > 0 ? "r+" : "w", start: have, mode: 0o600 });
      let received = have;
      const counter = new Writable({
        write(chunk: Buffer, _e, done) {
          received += chunk.length;
          if (received > expected) return done(new AttachmentIntegrityError("attachment on the server is larger than its pointer says"));
          verifier.update(chunk);
          onProgress?.({ bytesSent: received, bytesTotal: expected });
          if (!out.write(chunk)) out.once("drain", () => done());
          else done();
        },
        final(done) {
          out.end(done);
        },
      });
      try {
        await pipeline(Readable.fromWeb(res.body as never), counter);
      } catch (err) {
        if (err instanceof AttachmentIntegrityError) throw err;
        lastError = err;
        await new Promise<void>((r) => out.end(() => r()));
      }
      stalls = received === have ? stalls + 1 : 0;
      have = received;
      if (stalls >= 2 && have < expected) {
        throw new AttachmentIntegrityError("attachment on the server is shorter than its pointer says (truncated)");
      }
    }
    if (have < expected) {
      throw lastError instanceof VignetteError ? lastError : new VignetteError("attachment download did not complete", "UNREACHABLE");
    }
    return verifier;
  }
}
