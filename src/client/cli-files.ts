// The CLI's file helpers: which message kind and content type a path gets, the terminal progress bar, and where
// `listen` saves a received attachment.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { VignetteClient } from "./client.ts";
import { ATTACHMENT_KINDS, type AttachmentKind, type MessageBody, type Sendable } from "./content.ts";

const TYPES: Record<string, [AttachmentKind, string]> = {
  ".png": ["image", "image/png"],
  ".jpg": ["image", "image/jpeg"],
  ".jpeg": ["image", "image/jpeg"],
  ".gif": ["image", "image/gif"],
  ".webp": ["image", "image/webp"],
  ".heic": ["image", "image/heic"],
  ".mp4": ["video", "video/mp4"],
  ".mov": ["video", "video/quicktime"],
  ".webm": ["video", "video/webm"],
  ".ogg": ["voice", "audio/ogg"],
  ".opus": ["voice", "audio/opus"],
  ".m4a": ["voice", "audio/mp4"],
  ".mp3": ["voice", "audio/mpeg"],
  ".wav": ["voice", "audio/wav"],
  ".pdf": ["file", "application/pdf"],
  ".txt": ["file", "text/plain"],
  ".zip": ["file", "application/zip"],
};

export function kindOf(file: string): { kind: AttachmentKind; contentType: string } {
  const [kind, contentType] = TYPES[path.extname(file).toLowerCase()] ?? ["file", "application/octet-stream"];
  return { kind, contentType };
}

const MIB = 1024 * 1024;
const mib = (n: number) => (n / MIB).toFixed(1);

/** One progress line: bar, bytes, rate and time left (rate from the start; the time left from that rate). */
export function progressLine(sent: number, total: number, elapsedMs: number, width = 24): string {
  const fraction = total > 0 ? Math.min(1, sent / total) : 1;
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? (sent / elapsedMs) * 1000 : 0;
  const left = rate > 0 ? Math.ceil((total - sent) / rate) : null;
  const eta = left === null ? "--" : left >= 60 ? `${Math.floor(left / 60)}m${String(left % 60).padStart(2, "0")}s` : `${left}s`;
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${mib(sent)}/${mib(total)} MiB  ${mib(rate)} MiB/s  ${eta} left`;
}

/** Draws the progress line in place on a terminal, at most every 100 ms; does nothing elsewhere. */
export function progressBar(stream: NodeJS.WriteStream) {
  const start = Date.now();
  let last = 0;
  return {
    update(sent: number, total: number) {
      if (!stream.isTTY) return;
      const now = Date.now();
      if (now - last < 100 && sent < total) return;
      last = now;
      stream.write(`\r${progressLine(sent, total, now - start)}`);
    },
    done() {
      if (stream.isTTY) stream.write("\n");
    },
  };
}

/** A path under the account directory for a received attachment; the sender's file name is never trusted as a path. */
export function savePath(accountDir: string, messageId: string, fileName: string | undefined, kind: AttachmentKind): string {
  const base = path.basename(fileName ?? "").replace(/[^\w.-]+/g, "_").replace(/^\.+/, "").slice(0, 100) || kind;
  return path.join(accountDir, "attachments", `${messageId.slice(0, 8)}-${base}`);
}

/** Encrypts and uploads a file with a progress bar on stderr: the message body that carries it, and its size. */
export async function fileMessage(c: VignetteClient, file: string, caption?: string): Promise<{ body: Sendable; kind: AttachmentKind; size: number }> {
  const { kind, contentType } = kindOf(file);
  const bar = progressBar(process.stderr);
  const attachment = await c.attachments.upload(file, {
    contentType,
    fileName: path.basename(file),
    onProgress: (p) => bar.update(p.bytesSent, p.bytesTotal),
  });
  bar.done();
  return { body: { kind, attachment, ...(caption ? { caption } : {}) }, kind, size: attachment.size };
}

/** Saves a received message's attachment (1:1 or group) under the account directory and says where, or why not. */
export async function saveAttachment(c: VignetteClient, accountDir: string, m: { messageId: string; body: MessageBody }, out: (line: string) => void) {
  const body = m.body;
  if (!(ATTACHMENT_KINDS as readonly string[]).includes(body.kind) || !("attachment" in body)) return;
  const to = savePath(accountDir, m.messageId, body.attachment.fileName, body.kind as AttachmentKind);
  await mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
  try {
    out(`  saved ${await c.attachments.download(body.attachment, { to })}`);
  } catch (e) {
    // The message itself arrived; only its attachment could not be had (expired, tampered, unreachable).
    out(`  attachment not saved: ${(e as Error).message}`);
  }
}
