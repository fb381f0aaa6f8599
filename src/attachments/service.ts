// Attachments: grants uploads (size, quota), says who may write or read a blob, completes and expires blobs. The
// blob bytes never pass through here: tus (http.ts) writes them into the blob store, downloads stream out of it.
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Actor, ServiceDeps } from "../deps.ts";
import { AppError, forbidden, notFound } from "../errors.ts";
import type { BlobStore } from "./blob-store.ts";
import { createFsBlobStore } from "./fs-store.ts";
import { checkSize, newAttachmentId, quotaDay } from "./rules.ts";
import { createS3BlobStore } from "./s3-store.ts";
import { createAttachmentStore, type AttachmentRow, type AttachmentStore } from "./store.ts";

export interface AttachmentUpload {
  id: string;
  /** Path of the tus upload on this server (the SDK resolves it against the server's URL). */
  uploadUrl: string;
  expiresAt: Date;
  maxBytes: number;
}

export const UPLOAD_PATH = "/attachments";
const SWEEP_BATCH = 200;

export async function openBlobStore(deps: ServiceDeps, store: AttachmentStore): Promise<BlobStore> {
  const c = deps.config.attachments.store;
  if (c.kind === "s3") return createS3BlobStore(c, store);
  // In-memory PGlite keeps nothing after the process either, so neither do its blobs.
  return createFsBlobStore(c.dir ?? (await mkdtemp(path.join(os.tmpdir(), "vg-attachments-"))));
}

export function createAttachmentsService(deps: ServiceDeps) {
  const { config } = deps;
  const limits = config.attachments;
  const store = createAttachmentStore(deps.sql);
  // Opened on first use: the composition root stays synchronous and embedded mode makes no directory it never uses.
  let blobs: Promise<BlobStore> | null = null;
  const blobStore = () => (blobs ??= openBlobStore(deps, store));

  /** The row of a blob that may be written or read now; expired counts as gone even before the sweeper ran. */
  async function live(id: string): Promise<AttachmentRow> {
    const row = await store.get(id);
    if (!row || row.expiresAt.getTime() <= Date.now()) throw notFound("no such attachment");
    return row;
  }

  return {
    blobStore,
    counts: () => store.counts(),

    async createUpload(actor: Actor, input: { size: number; contentType?: string | null }): Promise<AttachmentUpload> {
      const refusal = checkSize(input.size, limits.maxBytes);
      if (refusal) throw new AppError(refusal.code, refusal.message, { maxBytes: limits.maxBytes });
      const now = new Date();
      const charged = await store.chargeQuota(actor, quotaDay(now), input.size, {
        uploads: limits.dailyUploads,
        bytes: limits.dailyBytes,
      });
      if (!charged) {
        throw new AppError("LIMIT_EXCEEDED", "daily attachment quota of this device used up", {
          dailyUploads: limits.dailyUploads,
          dailyBytes: limits.dailyBytes,
        });
      }
      const id = newAttachmentId();
      const expiresAt = new Date(now.getTime() + limits.uploadTtlSeconds * 1000);
      const contentType = input.contentType || "application/octet-stream";
      await store.insert({ id, size: input.size, contentType, actor, expiresAt });
      await (await blobStore()).prepare(id, input.size);
      return { id, uploadUrl: `${UPLOAD_PATH}/${id}`, expiresAt, maxBytes: input.size };
    },

    /** May this device send tus HEAD/PATCH for this id? Only the device it was granted to, only while open. */
    async checkUploader(actor: Actor, id: string, method: string): Promise<void> {
      const row = await live(id);
      // A finished upload answers a tus HEAD (offset = size) so a client that lost the last response can finish.
      if (row.completedAt) {
        if (method === "HEAD") return;
        throw new AppError("CONFLICT", "upload already complete");
      }
      if (row.uploaderUserId !== actor.userId || row.uploaderDeviceId !== actor.deviceId) {
        throw forbidden("this upload was granted to another device");
      }
    },

    async finishUpload(id: string): Promise<void> {
      await store.complete(id, new Date(Date.now() + limits.retentionSeconds * 1000));
    },

    /** A completed, unexpired blob any authenticated device may fetch: the unguessable id is the capability. */
    async download(id: string): Promise<{ size: number; contentType: string }> {
      const row = await live(id);
      if (!row.completedAt) throw notFound("no such attachment");
      return { size: row.size, contentType: row.contentType };
    },

    /** Deletes expired blobs and abandoned uploads, from the blob store first, then their rows. */
    async sweep(): Promise<number> {
      const rows = await store.expired(new Date(), SWEEP_BATCH);
      if (rows.length === 0) return 0;
      const bs = await blobStore();
      for (const row of rows) {
        await bs.remove(row.id);
        await store.delete(row.id);
      }
      return rows.length;
    },

    async close(): Promise<void> {
      if (blobs) await (await blobs).close();
    },
  };
}

export type AttachmentsService = ReturnType<typeof createAttachmentsService>;
