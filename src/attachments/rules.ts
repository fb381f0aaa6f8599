// Pure checks and shapes for attachments: ids, sizes, quotas, byte ranges. No I/O here (unit-tested).
import { randomBytes } from "node:crypto";

/** 144 random bits, base64url: the id is the capability to download, so it must be unguessable. */
export const ID_BYTES = 18;
export const ID_PATTERN = /^[A-Za-z0-9_-]{24}$/;
export const MAX_CONTENT_TYPE = 128;

export function newAttachmentId(): string {
  return randomBytes(ID_BYTES).toString("base64url");
}

export function isAttachmentId(id: string): boolean {
  return ID_PATTERN.test(id);
}

export type SizeRefusal = { code: "BAD_USER_INPUT" | "LIMIT_EXCEEDED"; message: string } | null;

export function checkSize(size: number, maxBytes: number): SizeRefusal {
  if (!Number.isSafeInteger(size) || size < 1) return { code: "BAD_USER_INPUT", message: "size must be a positive whole number of bytes" };
  if (size > maxBytes) return { code: "LIMIT_EXCEEDED", message: `an attachment may have at most ${maxBytes} bytes` };
  return null;
}

/** The UTC day a quota is counted in, as YYYY-MM-DD. */
export function quotaDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

export type TusRefusal = { status: 400 | 412 | 415; message: string } | null;

/**
 * The tus 1.0 headers of a HEAD or PATCH, checked before @tus/server sees the request (its own refusals are plain
 * text; ours carry a code). PATCH: Upload-Offset a whole number, the tus content type.
 */
export function checkTusHeaders(method: string, headers: Record<string, string | string[] | undefined>): TusRefusal {
  if (headers["tus-resumable"] !== "1.0.0") return { status: 412, message: "Tus-Resumable: 1.0.0 is required" };
  if (method !== "PATCH") return null;
  const offset = headers["upload-offset"];
  if (typeof offset !== "string" || !/^\d{1,15}$/.test(offset)) return { status: 400, message: "Upload-Offset must be a whole number" };
  if (headers["content-type"] !== "application/offset+octet-stream") {
    return { status: 415, message: "Content-Type must be application/offset+octet-stream" };
  }
  if (headers["upload-length"] !== undefined) return { status: 400, message: "Upload-Length is fixed by the grant" };
  return null;
}

export type Range = { start: number; end: number };

/**
 * One byte range from a Range header (RFC 9110 14.1.2), inclusive end, or "none" (no header: the whole blob),
 * or "unsatisfiable" (answer 416). Several ranges are served as the whole blob, which the RFC allows.
 */
export function parseRange(header: string | undefined, size: number): Range | "none" | "unsatisfiable" {
  if (!header) return "none";
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return header.includes(",") ? "none" : "unsatisfiable";
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}
