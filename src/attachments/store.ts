// The only code touching attachments, attachment_parts and attachment_quotas. Sizes come back as numbers (float8:
// exact below 2^53, and pg would hand int8 over as a string).
import type { Sql } from "../db/database.ts";
import type { Actor } from "../deps.ts";

export interface AttachmentRow {
  id: string;
  size: number;
  contentType: string;
  uploaderUserId: string | null;
  uploaderDeviceId: number | null;
  completedAt: Date | null;
  expiresAt: Date;
  multipartId: string | null;
  committedBytes: number;
  tailBytes: number;
  createdAt: Date;
}

const COLUMNS = `id, size::float8 AS "size", content_type AS "contentType", uploader_user_id AS "uploaderUserId",
  uploader_device_id AS "uploaderDeviceId", completed_at AS "completedAt", expires_at AS "expiresAt",
  multipart_id AS "multipartId", committed_bytes::float8 AS "committedBytes", tail_bytes::float8 AS "tailBytes",
  created_at AS "createdAt"`;

export function createAttachmentStore(sql: Sql) {
  return {
    /** Blobs held (complete or still uploading) and their granted bytes, for the metrics. */
    async counts(): Promise<{ stored: number; uploading: number; bytes: number }> {
      const [row] = await sql<{ stored: number; uploading: number; bytes: number }>(
        `SELECT count(*) FILTER (WHERE completed_at IS NOT NULL)::int AS stored,
                count(*) FILTER (WHERE completed_at IS NULL)::int AS uploading,
                coalesce(sum(size), 0)::float8 AS bytes
         FROM attachments WHERE expires_at > now()`,
        [],
      );
      return row;
    },

    /**
     * Counts one upload of `size` bytes against the device's day, only if both stay within the limits.
     * One statement, so concurrent grants cannot overshoot. False: over quota, nothing counted.
     */
    async chargeQuota(actor: Actor, day: string, size: number, limits: { uploads: number; bytes: number }) {
      if (size > limits.bytes) return false;
      const rows = await sql<{ uploads: number }>(
        `INSERT INTO attachment_quotas (user_id, device_id, day, uploads, bytes) VALUES ($1, $2, $3::date, 1, $4)
         ON CONFLICT (user_id, device_id, day) DO UPDATE
           SET uploads = attachment_quotas.uploads + 1, bytes = attachment_quotas.bytes + EXCLUDED.bytes
           WHERE attachment_quotas.uploads < $5 AND attachment_quotas.bytes + EXCLUDED.bytes <= $6
         RETURNING uploads`,
        [actor.userId, actor.deviceId, day, size, limits.uploads, limits.bytes],
      );
      return rows.length === 1;
    },

    async insert(row: { id: string; size: number; contentType: string; actor: Actor; expiresAt: Date }) {
      await sql(
        `INSERT INTO attachments (id, size, content_type, uploader_user_id, uploader_device_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [row.id, row.size, row.contentType, row.actor.userId, row.actor.deviceId, row.expiresAt],
      );
    },

    async get(id: string): Promise<AttachmentRow | null> {
      const rows = await sql<AttachmentRow>(`SELECT ${COLUMNS} FROM attachments WHERE id = $1`, [id]);
      return rows[0] ?? null;
    },

    /** Marks the upload complete and forgets who made it; the blob now lives until retention ends. */
    async complete(id: string, expiresAt: Date) {
      await sql(
        `UPDATE attachments SET completed_at = now(), expires_at = $2, uploader_user_id = NULL,
           uploader_device_id = NULL, multipart_id = NULL, committed_bytes = size, tail_bytes = 0
         WHERE id = $1 AND completed_at IS NULL`,
        [id, expiresAt],
      );
      await sql(`DELETE FROM attachment_parts WHERE attachment_id = $1`, [id]);
    },

    async expired(now: Date, limit: number): Promise<AttachmentRow[]> {
      return sql<AttachmentRow>(`SELECT ${COLUMNS} FROM attachments WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`, [
        now,
        limit,
      ]);
    },

    async delete(id: string) {
      await sql(`DELETE FROM attachments WHERE id = $1`, [id]);
    },

    // ---- the S3 store's part ledger ----------------------------------------------------------------------------

    async setMultipart(id: string, multipartId: string) {
      await sql(`UPDATE attachments SET multipart_id = $2 WHERE id = $1 AND multipart_id IS NULL`, [id, multipartId]);
    },

    /** Records an uploaded part; false when another request moved the upload on meanwhile. */
    async addPart(id: string, part: { number: number; etag: string; size: number }, expectedCommitted: number) {
      const moved = await sql<{ id: string }>(
        `UPDATE attachments SET committed_bytes = committed_bytes + $3, tail_bytes = 0
         WHERE id = $1 AND committed_bytes = $2 AND completed_at IS NULL RETURNING id`,
        [id, expectedCommitted, part.size],
      );
      if (moved.length === 0) return false;
      await sql(
        `INSERT INTO attachment_parts (attachment_id, part_number, etag, size) VALUES ($1, $2, $3, $4)
         ON CONFLICT (attachment_id, part_number) DO UPDATE SET etag = EXCLUDED.etag, size = EXCLUDED.size`,
        [id, part.number, part.etag, part.size],
      );
      return true;
    },

    async setTail(id: string, tailBytes: number, expectedCommitted: number) {
      await sql(`UPDATE attachments SET tail_bytes = $3 WHERE id = $1 AND committed_bytes = $2`, [
        id,
        expectedCommitted,
        tailBytes,
      ]);
    },

    async parts(id: string): Promise<{ number: number; etag: string }[]> {
      return sql(
        `SELECT part_number AS "number", etag FROM attachment_parts WHERE attachment_id = $1 ORDER BY part_number`,
        [id],
      );
    },
  };
}

export type AttachmentStore = ReturnType<typeof createAttachmentStore>;
