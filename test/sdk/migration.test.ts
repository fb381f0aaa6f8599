// Account directories written by the file store are migrated into the SQLite store on open: credentials, Signal
// state, seen ids, pending plaintext, conversations and history; the old files go once the data is committed. With a
// real server: an account made in the old format keeps its sessions (both directions work without new key claims).
import { readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AccountDirectory, VignetteClient } from "vignette-messaging/client";
import { PreKeyStatusDocument } from "../../src/client/generated/graphql.ts";
import { FileKeyValueStore } from "../../src/client/store/legacy-files.ts";
import { SqliteAccountStore } from "../../src/client/store/sqlite-store.ts";
import type { MessageRecord } from "../../src/client/store/types.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { addFileStoreEntries, fileStoreAccount } from "../helpers/file-store-account.ts";
import { record, removeTempDirs, tempDir, texts, useSdkServer } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

const PEER = "00000000-0000-4000-8000-00000000000a";
const CONV = "00000000-0000-4000-8000-0000000000cc";
const received = (i: number): MessageRecord => ({
  messageId: `00000000-0000-4000-9000-${String(i).padStart(12, "0")}`,
  conversationId: CONV,
  peerUserId: PEER,
  direction: "in",
  from: { userId: PEER, deviceId: 1 },
  sentAt: 1_764_000_000_000 + i,
  serverTimestamp: new Date(1_764_000_000_000 + i * 1000).toISOString(),
  body: { kind: "text", text: `old message ${i}` },
  expiresAt: null,
  readAt: "2026-01-01T00:00:00.000Z",
});

async function oldDirectory(): Promise<string> {
  const dir = await tempDir();
  const kv = await FileKeyValueStore.open(path.join(dir, "store"));
  await kv.set("self/identity", new Uint8Array([1, 2, 3]));
  await kv.set(`session/${PEER}.1`, new Uint8Array([4, 5]));
  await kv.set("mls:group:g1", new Uint8Array([6]));
  for (let i = 1; i <= 3; i++) await addFileStoreEntries(kv, received(i), { seen: [`env-${i}`], pending: [] });
  await addFileStoreEntries(kv, received(4), { seen: [], pending: [["env-4", new Uint8Array([7, 7])]] });
  const info = { server: "http://127.0.0.1:1/graphql", userId: "00000000-0000-4000-8000-000000000001", deviceId: 1, token: "t", username: "bob" };
  await writeFile(path.join(dir, "account.json"), JSON.stringify(info), { mode: 0o600 });
  return dir;
}

describe("migration from the file store", () => {
  afterAll(removeTempDirs);

  it("moves every entry into the database in one step and removes the old files", async () => {
    const dir = await oldDirectory();
    const d = await AccountDirectory.open(dir);
    expect(d.migratedMessages).toBe(4);
    expect(await d.readInfo()).toMatchObject({ userId: "00000000-0000-4000-8000-000000000001", username: "bob", token: "t" });
    expect([...(await d.kv.get("self/identity"))!]).toEqual([1, 2, 3]);
    expect([...(await d.kv.get(`session/${PEER}.1`))!]).toEqual([4, 5]);
    expect(await d.kv.list("mls:")).toEqual(["mls:group:g1"]);
    expect(await d.kv.list("msg/")).toEqual([]); // messages are rows now, not key/value entries
    expect(await d.kv.isSeen("env-2")).toBe(true);
    expect([...(await d.kv.pending("env-4"))!]).toEqual([7, 7]);
    expect(await d.kv.conversationWith(PEER)).toBe(CONV);
    expect(await d.kv.peerOf(CONV)).toBe(PEER);
    const history = await d.kv.messages({ conversation: PEER, limit: 10 });
    expect(history.map((m) => m.body)).toEqual([4, 3, 2, 1].map((i) => ({ kind: "text", text: `old message ${i}` })));
    expect(history[3].readAt).toBe("2026-01-01T00:00:00.000Z");
    expect((await d.kv.search({ text: "message 3", limit: 10 })).map((m) => m.messageId)).toEqual([received(3).messageId]);
    expect((await readdir(dir)).sort()).toEqual(["account.db", "account.db-shm", "account.db-wal"]);
    expect((await stat(path.join(dir, "account.db"))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    await d.close();
    const again = await AccountDirectory.open(dir);
    expect(again.migratedMessages).toBeNull();
    expect(await again.kv.messages({ limit: 10 })).toHaveLength(4);
    await again.close();
  });

  it("a crash after the migration committed but before the old files were deleted: they are deleted, not imported twice", async () => {
    const dir = await oldDirectory();
    // The committed migration, as the crashed open left it: the database is complete, the old files still there.
    const db = SqliteAccountStore.open(path.join(dir, "account.db"));
    db.applySync({ messages: [received(1)], info: { server: "s", userId: "u", deviceId: 1, token: "t", username: null } }, { migratedFromFiles: "x" });
    await db.close();
    const d = await AccountDirectory.open(dir);
    expect(d.migratedMessages).toBeNull();
    expect(await d.kv.messages({ limit: 10 })).toHaveLength(1);
    expect((await readdir(dir)).filter((f) => f === "store" || f === "account.json")).toEqual([]);
    await d.close();
  });

  it("refuses to merge old files into a database that already holds another account, and deletes nothing", async () => {
    const dir = await oldDirectory();
    const db = SqliteAccountStore.open(path.join(dir, "account.db"));
    await db.apply({ info: { server: "s", userId: "someone-else", deviceId: 1, token: "t", username: null } });
    await db.close();
    await expect(AccountDirectory.open(dir)).rejects.toThrow(/older file store/);
    expect((await readdir(dir)).sort()).toEqual(expect.arrayContaining(["account.json", "store"]));
  });
});

describe("an account made by the file-store SDK, opened by this one", () => {
  const server = useSdkServer();

  it("keeps its history and its sessions: both directions work on without new pre-key claims", async () => {
    const alice = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") });
    const got = record(alice);
    await alice.start();
    const bobDir = await tempDir();
    const old = await fileStoreAccount(server.url, bobDir, uniqueUsername("bob"));
    const first = await old.send(alice.userId, "sent by the old SDK");
    await waitFor(() => texts(got).includes("sent by the old SDK"), "alice gets the old client's message");
    await alice.send(old.info.userId, "alice answers while bob is offline");

    const bob = await VignetteClient.open(bobDir);
    const bobGot = record(bob);
    try {
      expect(bob.directory.migratedMessages).toBe(1);
      expect(bob.userId).toBe(old.info.userId);
      await bob.start();
      await waitFor(() => texts(bobGot).includes("alice answers while bob is offline"), "bob decrypts with the migrated session");
      const alicesKeys = async () => (await alice.http.request(PreKeyStatusDocument)).preKeyStatus;
      const keysBefore = await alicesKeys();
      await bob.send(alice.userId, "and bob replies on the migrated session");
      await waitFor(() => texts(got).includes("and bob replies on the migrated session"), "alice decrypts bob's reply");
      // A new session would have claimed one of Alice's one-time keys.
      expect(await alicesKeys()).toEqual(keysBefore);
      const history = await bob.messages(alice.userId);
      expect(history.map((m) => (m.body as { text: string }).text)).toEqual([
        "and bob replies on the migrated session",
        "alice answers while bob is offline",
        "sent by the old SDK",
      ]);
      expect(history[2].messageId).toBe(first.messageId);
      expect(bobGot.events.undecryptable ?? []).toEqual([]);
    } finally {
      await bob.close();
      await alice.close();
    }
  });
});
