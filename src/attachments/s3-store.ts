// Blobs in any S3-compatible object store, written as one multipart upload per blob. A tus DataStore of our own
// rather than @tus/s3-store: that one lists the uploaded parts (ListParts) to resume, which s3rver and some other
// S3-compatible servers refuse. Here the part list and offsets live in PostgreSQL (attachment_parts), so any node
// resumes any upload. A PATCH's bytes are spooled to a local temp file and sent as parts of at least S3_PART_BYTES
// (S3 needs 5 MiB except for the last); what is left when a PATCH ends short of a part is kept as a "<id>.tail"
// object until the next PATCH prepends it.
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { DataStore, ERRORS, Upload } from "@tus/utils";
import type { Config } from "../config.ts";
import { BlobRangeError, type BlobStore } from "./blob-store.ts";
import type { AttachmentStore } from "./store.ts";

type S3Config = Extract<Config["attachments"]["store"], { kind: "s3" }>;

export function createS3Client(c: S3Config): S3Client {
  return new S3Client({
    region: c.region,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    ...(c.credentials ? { credentials: c.credentials } : {}),
    forcePathStyle: c.forcePathStyle,
    // The SDK's default (checksums on every request) sends streamed bodies aws-chunked with a trailer, which
    // S3-compatible servers such as s3rver store verbatim. Blobs carry their own digest and MAC anyway.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

const tailKey = (id: string) => `${id}.tail`;

class S3PartsDataStore extends DataStore {
  constructor(
    private s3: S3Client,
    private bucket: string,
    private partBytes: number,
    private ledger: AttachmentStore,
    private tmpDir: string,
  ) {
    super();
    this.extensions = [];
  }

  async getUpload(id: string): Promise<Upload> {
    const row = await this.ledger.get(id);
    if (!row) throw ERRORS.FILE_NOT_FOUND;
    const offset = row.completedAt ? row.size : row.committedBytes + row.tailBytes;
    return new Upload({ id, size: row.size, offset, creation_date: row.createdAt.toISOString() });
  }

  async write(readable: Readable, id: string, offset: number): Promise<number> {
    const row = await this.ledger.get(id);
    if (!row || row.completedAt) throw ERRORS.FILE_NOT_FOUND;
    if (row.committedBytes + row.tailBytes !== offset) throw ERRORS.INVALID_OFFSET;
    let committed = row.committedBytes;
    let multipartId = row.multipartId;
    let partNumber = (await this.ledger.parts(id)).length + 1;
    const spool = new Spool(path.join(this.tmpDir, `${id}.${process.pid}.${Date.now()}`));
    let tailKept = row.tailBytes;
    try {
      if (row.tailBytes > 0) {
        const tail = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: tailKey(id) }));
        for await (const chunk of tail.Body as Readable) await spool.add(chunk as Buffer);
      }
      const flush = async (last: boolean) => {
        multipartId ??= await this.startMultipart(id);
        const size = await spool.close();
        const part = await this.s3.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: id,
            UploadId: multipartId,
            PartNumber: partNumber,
            Body: createReadStream(spool.file),
            ContentLength: size,
          }),
        );
        if (!(await this.ledger.addPart(id, { number: partNumber, etag: part.ETag!, size }, committed))) {
          throw ERRORS.INVALID_OFFSET; // another request wrote this upload meanwhile
        }
        committed += size;
        partNumber += 1;
        tailKept = 0;
        if (!last) await spool.reset();
      };
      let streamError: unknown = null;
      try {
        for await (const chunk of readable) {
          await spool.add(chunk as Buffer);
          if (spool.size >= this.partBytes && committed + spool.size < row.size) await flush(false);
        }
      } catch (err) {
        // A cut connection: keep what arrived (below), then report the failure.
        streamError = err;
      }
      if (committed + spool.size === row.size) {
        if (spool.size > 0) await flush(true);
        await this.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: id,
            UploadId: multipartId!,
            MultipartUpload: { Parts: (await this.ledger.parts(id)).map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
          }),
        );
        await this.deleteTail(id);
      } else if (spool.size > 0) {
        await spool.close();
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: tailKey(id),
            Body: createReadStream(spool.file),
            ContentLength: spool.size,
          }),
        );
        await this.ledger.setTail(id, spool.size, committed);
        tailKept = spool.size;
      } else if (spool.size === 0 && row.tailBytes > 0) {
        await this.deleteTail(id);
      }
      if (streamError) throw streamError;
      return committed + tailKept;
    } finally {
      await spool.discard();
    }
  }

  private async startMultipart(id: string): Promise<string> {
    const created = await this.s3.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: id, ContentType: "application/octet-stream" }),
    );
    await this.ledger.setMultipart(id, created.UploadId!);
    return created.UploadId!;
  }

  async deleteTail(id: string) {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: tailKey(id) })).catch(() => {});
  }
}

/** A temp file the bytes of one part collect in. */
class Spool {
  size = 0;
  private out: ReturnType<typeof createWriteStream> | null = null;
  constructor(readonly file: string) {}
  async add(chunk: Buffer) {
    this.out ??= createWriteStream(this.file);
    this.size += chunk.length;
    if (!this.out.write(chunk)) await once(this.out, "drain");
  }
  /** Finishes writing; the file then holds `size` bytes. */
  async close(): Promise<number> {
    if (this.out) {
      const out = this.out;
      this.out = null;
      await new Promise<void>((done, fail) => out.end((err?: Error | null) => (err ? fail(err) : done())));
    }
    return (await stat(this.file)).size;
  }
  async reset() {
    await this.discard();
    this.size = 0;
  }
  async discard() {
    if (this.out) {
      this.out.destroy();
      this.out = null;
    }
    await rm(this.file, { force: true });
  }
}

export async function createS3BlobStore(c: S3Config, ledger: AttachmentStore): Promise<BlobStore> {
  const s3 = createS3Client(c);
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), "vg-s3-spool-"));
  const datastore = new S3PartsDataStore(s3, c.bucket, c.partBytes, ledger, tmpDir);
  return {
    kind: "s3",
    datastore,
    // The ledger row made by the grant is the upload; S3 sees nothing until the first part.
    async prepare() {},
    async read(id, range) {
      try {
        const got = await s3.send(
          new GetObjectCommand({ Bucket: c.bucket, Key: id, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
        );
        return got.Body as Readable;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) throw new BlobRangeError();
        throw err;
      }
    },
    async remove(id) {
      const row = await ledger.get(id);
      if (row?.multipartId) {
        await s3.send(new AbortMultipartUploadCommand({ Bucket: c.bucket, Key: id, UploadId: row.multipartId })).catch(() => {});
      }
      await datastore.deleteTail(id);
      await s3.send(new DeleteObjectCommand({ Bucket: c.bucket, Key: id }));
    },
    async close() {
      s3.destroy();
      await rm(tmpDir, { recursive: true, force: true });
    },
  };
}
