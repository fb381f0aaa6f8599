// The one interface both blob stores implement: a tus DataStore for uploads plus ranged reads and deletion.
import type { Readable } from "node:stream";
import type { DataStore } from "@tus/utils";
import type { Range } from "./rules.ts";

/** The store holds fewer bytes than the range asked (a damaged or cut-off blob). */
export class BlobRangeError extends Error {}

export interface BlobStore {
  kind: "fs" | "s3";
  /** What @tus/server writes uploads through. */
  datastore: DataStore;
  /** Makes the tus upload for a granted id exist (size fixed), so the client only ever sends HEAD and PATCH. */
  prepare(id: string, size: number): Promise<void>;
  /** The stored bytes of a completed blob, or of the given inclusive range. */
  read(id: string, range: Range | null): Promise<Readable>;
  /** Deletes the blob and anything its open upload left behind; a missing blob is not an error. */
  remove(id: string): Promise<void>;
  close(): Promise<void>;
}
