// Servers with each blob store for attachment tests: the filesystem in a temp dir, or s3rver.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startServer, type TestServer } from "./server.ts";
import { listFiles, startS3, type TestS3 } from "./s3.ts";

export type StoreKind = "fs" | "s3";
export const STORES: StoreKind[] = ["fs", "s3"];

export interface AttachmentServer extends TestServer {
  store: StoreKind;
  s3: TestS3 | null;
  /** Every file the blob store holds. */
  storedFiles(): Promise<string[]>;
}

export async function startAttachmentServer(store: StoreKind, extra: Record<string, string> = {}): Promise<AttachmentServer> {
  const s3 = store === "s3" ? await startS3() : null;
  const dir = store === "fs" ? await mkdtemp(path.join(os.tmpdir(), "vg-blobs-")) : null;
  const server = await startServer({ ...(s3 ? s3.env : { ATTACHMENTS_DIR: dir! }), ...extra });
  return {
    ...server,
    store,
    s3,
    storedFiles: () => (s3 ? s3.files() : listFiles(dir!)),
    async close() {
      await server.close();
      await s3?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The server's origin, where /attachments/ lives. */
export const origin = (server: { url: string }) => new URL(server.url).origin;
