// /attachments/ over plain HTTP: tus 1.0 HEAD/PATCH (through @tus/server) to upload a granted blob, GET/HEAD with
// Range to download one. Every request but CORS preflight needs a device token. Refusals are JSON like GraphQL's
// ({ errors: [{ message, extensions: { code } }] }), and come before any byte is stored. Nothing here logs an id.
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { Server as TusServer } from "@tus/server";
import type { Actor } from "../deps.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { bearerToken, clientAddress } from "../http/auth.ts";
import type { RateLimits } from "../config.ts";
import { chargesFor, type RateLimiter } from "../graphql/plugins/rate-limiter.ts";
import { BlobRangeError, type BlobStore } from "./blob-store.ts";
import { checkTusHeaders, isAttachmentId, parseRange } from "./rules.ts";
import { UPLOAD_PATH, type AttachmentsService } from "./service.ts";

export interface AttachmentsHttpDeps {
  service: AttachmentsService;
  authenticate(token: string | null): Promise<Actor | null>;
  limiter: RateLimiter | null;
  rateLimits: RateLimits | null;
  trustProxy: boolean;
  maxBytes: number;
  logger: Logger;
}

const STATUS_CODES: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "UNAUTHENTICATED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "BAD_REQUEST",
  409: "CONFLICT",
  410: "NOT_FOUND",
  412: "BAD_REQUEST",
  413: "PAYLOAD_TOO_LARGE",
  415: "BAD_REQUEST",
  416: "BAD_REQUEST",
  429: "RATE_LIMITED",
  460: "BAD_REQUEST",
};
const APP_STATUS: Partial<Record<AppError["code"], number>> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  BAD_USER_INPUT: 400,
};

const errorBody = (message: string, code: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ errors: [{ message, extensions: { ...extra, code } }] });

function refuse(res: ServerResponse, status: number, message: string, extra: Record<string, unknown> = {}) {
  if (res.headersSent) return void res.destroy();
  const body = errorBody(message, STATUS_CODES[status] ?? "BAD_REQUEST", extra);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "tus-resumable": "1.0.0",
    // The body of a refused upload is never read: do not leave it in the kept-alive socket.
    connection: "close",
  });
  res.end(body);
}

/** The request handler for everything under /attachments/. */
export async function createAttachmentsHttp(deps: AttachmentsHttpDeps) {
  const { service, logger } = deps;
  const blobs = await service.blobStore();
  const tus = new TusServer({
    path: UPLOAD_PATH,
    datastore: blobs.datastore,
    maxSize: deps.maxBytes,
    relativeLocation: true,
    onUploadFinish: async (_req, upload) => {
      await service.finishUpload(upload.id);
      return {};
    },
    // tus answers in plain text; ours carry a code like every other refusal of this server.
    onResponseError: (_req, err) => {
      const e = err as { status_code?: number; body?: string; message?: string };
      const status = e.status_code ?? 500;
      if (status >= 500) logger.warn({ err: e.message ?? e.body }, "attachment upload failed");
      const message = (e.body ?? "upload failed").trim();
      return { status_code: status, body: errorBody(message, STATUS_CODES[status] ?? "UNAVAILABLE") };
    },
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    // CORS preflight carries no credentials by design; it reveals only what tus supports.
    if (req.method === "OPTIONS") return tus.handle(req, res);
    const actor = await deps.authenticate(bearerToken(req.headers.authorization));
    if (!actor) return refuse(res, 401, "a valid device token is required");
    if (deps.limiter && deps.rateLimits) {
      const ip = clientAddress(req, deps.trustProxy);
      await deps.limiter.consume(chargesFor(deps.rateLimits, "attachments", { device: `${actor.userId}:${actor.deviceId}`, ip }));
    }
    const id = (req.url ?? "").split("?")[0].slice(UPLOAD_PATH.length + 1);
    if (!isAttachmentId(id)) return refuse(res, 404, "no such attachment");
    const isTus = req.headers["tus-resumable"] !== undefined;
    if (req.method === "GET" || (req.method === "HEAD" && !isTus)) return download(service, blobs, req, res, id);
    // Uploads exist only by grant (createAttachmentUpload): no tus creation, no termination.
    if (req.method !== "PATCH" && req.method !== "HEAD") return refuse(res, 405, `${req.method} is not allowed here`);
    const bad = checkTusHeaders(req.method, req.headers);
    if (bad) return refuse(res, bad.status, bad.message);
    await service.checkUploader(actor, id, req.method);
    return tus.handle(req, res);
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof AppError) return refuse(res, APP_STATUS[err.code] ?? 400, err.message, err.details);
      logger.warn({ err: (err as Error).message }, "attachment request failed");
      if (res.headersSent) return void res.destroy();
      const body = errorBody("service unavailable, retry", "UNAVAILABLE");
      res.writeHead(503, { "content-type": "application/json" }).end(body);
    });
  };
}

/** GET or HEAD of a completed blob, whole or one range. */
async function download(service: AttachmentsService, blobs: BlobStore, req: IncomingMessage, res: ServerResponse, id: string) {
  const blob = await service.download(id);
  const range = parseRange(req.headers.range, blob.size);
  if (range === "unsatisfiable") {
    res.setHeader("content-range", `bytes */${blob.size}`);
    return refuse(res, 416, "range not satisfiable");
  }
  const part = range === "none" ? null : range;
  const headers: Record<string, string | number> = {
    "content-type": "application/octet-stream",
    "accept-ranges": "bytes",
    // The same id always names the same bytes; only the holder of the token and the id may see them.
    "cache-control": "private, max-age=31536000, immutable",
    "content-length": part ? part.end - part.start + 1 : blob.size,
  };
  if (part) headers["content-range"] = `bytes ${part.start}-${part.end}/${blob.size}`;
  if (req.method === "HEAD") return void res.writeHead(part ? 206 : 200, headers).end();
  let source;
  try {
    source = await blobs.read(id, part);
  } catch (err) {
    if (err instanceof BlobRangeError) return refuse(res, 416, "the stored blob is shorter than recorded");
    throw err;
  }
  res.writeHead(part ? 206 : 200, headers);
  const length = Number(headers["content-length"]);
  let sent = 0;
  source.on("data", (chunk: Buffer) => (sent += chunk.length));
  await pipeline(source, res);
  // A stored blob shorter than its row (damaged store): cut the response rather than leave the client waiting.
  if (sent !== length) res.destroy();
}
