// Blobs as files (embedded mode): @tus/file-store writes the uploads, ranged reads come straight off the file.
import { createReadStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { FileStore } from "@tus/file-store";
import { Upload } from "@tus/utils";
import type { BlobStore } from "./blob-store.ts";

export async function createFsBlobStore(dir: string): Promise<BlobStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const datastore = new FileStore({ directory: dir });
  // Ids are checked against rules.ts's pattern before they get here; join cannot leave the directory.
  const file = (id: string) => path.join(dir, id);
  return {
    kind: "fs",
    datastore,
    async prepare(id, size) {
      await datastore.create(new Upload({ id, size, offset: 0, creation_date: new Date().toISOString() }));
    },
    async read(id, range) {
      return createReadStream(file(id), range ? { start: range.start, end: range.end } : {});
    },
    async remove(id) {
      // The blob and @tus/file-store's JSON beside it.
      await rm(file(id), { force: true });
      await rm(`${file(id)}.json`, { force: true });
    },
    async close() {},
  };
}
