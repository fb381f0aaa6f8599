// Moves an account directory written by the file store (store/ with one file per key, account.json) into the SQLite
// store on open, in one transaction: Signal and MLS state, seen ids, pending plaintext, conversations and every
// message. The old files are deleted only once that transaction committed (and on a later open if a crash came in
// between), so no user loses history or sessions and no stale private key lingers on disk.
import { promises as fs } from "node:fs";
import path from "node:path";
import { FileKeyValueStore } from "./legacy-files.ts";
import type { SqliteAccountStore } from "./sqlite-store.ts";
import type { AccountInfo, MessageRecord, WriteBatch } from "./types.ts";

const MARKER = "migratedFromFiles";
const READ_CONCURRENCY = 256;

const exists = (p: string) => fs.stat(p).then(() => true, () => false);
const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");

/** Builds the batch that recreates the file store's content. Exported for the tests. */
export async function readFileStore(dir: string): Promise<{ batch: WriteBatch; messages: number }> {
  const batch: Required<Pick<WriteBatch, "kv" | "messages" | "seen" | "pending" | "conversations">> & WriteBatch = {
    kv: [],
    messages: [],
    seen: [],
    pending: [],
    conversations: [],
  };
  const infoFile = path.join(dir, "account.json");
  if (await exists(infoFile)) batch.info = JSON.parse(await fs.readFile(infoFile, "utf8")) as AccountInfo;
  const storeDir = path.join(dir, "store");
  if (await exists(storeDir)) {
    const kv = await FileKeyValueStore.open(storeDir);
    const keys = await kv.list("");
    const entries: (readonly [string, Uint8Array<ArrayBuffer> | undefined])[] = [];
    // Read a few hundred files at a time: a directory of 100,000 messages is read in seconds, not minutes.
    for (let i = 0; i < keys.length; i += READ_CONCURRENCY)
      entries.push(...(await Promise.all(keys.slice(i, i + READ_CONCURRENCY).map(async (k) => [k, await kv.get(k)] as const))));
    for (const [key, value] of entries) {
      if (!value) continue;
      const slash = key.indexOf("/");
      const [prefix, rest] = slash < 0 ? ["", key] : [key.slice(0, slash), key.slice(slash + 1)];
      if (prefix === "msg") batch.messages.push(JSON.parse(text(value)) as MessageRecord);
      else if (prefix === "seen") batch.seen.push(rest);
      else if (prefix === "pending") batch.pending.push({ envelopeId: rest, plaintext: value });
      else if (prefix === "conv") batch.conversations.push({ peerUserId: rest, conversationId: text(value) });
      else if (prefix !== "convpeer") batch.kv.push({ key, value }); // convpeer/ is the reverse of conv/, an index now
    }
  }
  return { batch, messages: batch.messages.length };
}

async function removeOldFiles(dir: string): Promise<void> {
  await fs.rm(path.join(dir, "store"), { recursive: true, force: true });
  await fs.rm(path.join(dir, "account.json"), { force: true });
}

/** Migrates dir's file store into store if there is one; returns how many messages came over (null: nothing to do). */
export async function migrateFileStore(dir: string, store: SqliteAccountStore): Promise<number | null> {
  const old = (await exists(path.join(dir, "store"))) || (await exists(path.join(dir, "account.json")));
  if (!old) return null;
  if (store.meta(MARKER)) {
    // Committed before, then interrupted before the files were gone.
    await removeOldFiles(dir);
    return null;
  }
  if (await store.readInfo()) {
    // An account made by this SDK version next to old files: not ours to merge or delete.
    throw new Error(`${dir} holds both an account database and an older file store; move one of them away`);
  }
  const { batch, messages } = await readFileStore(dir);
  store.applySync(batch, { [MARKER]: new Date().toISOString() });
  await removeOldFiles(dir);
  return messages;
}
