// The SDK's SQLite account store without a server: key/value semantics, atomic batches (also across SIGKILL), file
// permissions, paging newest first, FTS5 search, and the folding of reactions, edits, votes and RSVPs.
import { stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteAccountStore } from "../../src/client/store/sqlite-store.ts";
import type { MessageRecord } from "../../src/client/store/types.ts";
import { killWhileRunning, removeTempDirs, tempDir } from "../helpers/sdk.ts";

afterAll(removeTempDirs);

const ALICE = "00000000-0000-4000-8000-00000000000a";
const BOB = "00000000-0000-4000-8000-00000000000b";
const SELF = "00000000-0000-4000-8000-000000000001";
const T0 = Date.parse("2026-11-01T00:00:00.000Z");

function msg(i: number, peer: string, text: string, atMs = T0 + i * 1000): MessageRecord {
  return {
    messageId: `00000000-0000-4000-9000-${String(i).padStart(12, "0")}`,
    conversationId: null,
    peerUserId: peer,
    direction: "in",
    from: { userId: peer, deviceId: 1 },
    sentAt: atMs,
    serverTimestamp: new Date(atMs).toISOString(),
    body: { kind: "text", text },
    expiresAt: null,
  };
}

const open = async () => SqliteAccountStore.open(path.join(await tempDir(), "account.db"));

describe("SqliteAccountStore key/value", () => {
  it("gets, sets, deletes and lists by prefix like every KeyValueStore, and persists across reopen", async () => {
    const file = path.join(await tempDir(), "account.db");
    const kv = SqliteAccountStore.open(file);
    await kv.set("session/abc.1", new Uint8Array([1, 2, 3]));
    await kv.set("session/abc.2", new Uint8Array([4]));
    await kv.set("sessionX", new Uint8Array([9]));
    await kv.set("mls:group:g1", new Uint8Array([5]));
    await kv.set("session/abc.2", new Uint8Array([6]));
    await kv.close();
    const again = SqliteAccountStore.open(file);
    expect([...(await again.get("session/abc.1"))!]).toEqual([1, 2, 3]);
    expect([...(await again.get("session/abc.2"))!]).toEqual([6]);
    expect((await again.list("session/")).sort()).toEqual(["session/abc.1", "session/abc.2"]);
    expect(await again.list("mls:group:")).toEqual(["mls:group:g1"]);
    expect((await again.list("")).length).toBe(4);
    await again.delete("session/abc.1");
    expect(await again.get("session/abc.1")).toBeUndefined();
    expect(await again.get("never")).toBeUndefined();
    // The value is a fresh Uint8Array the caller may keep.
    expect((await again.get("session/abc.2")) instanceof Uint8Array).toBe(true);
    await again.close();
  });

  it("creates the database and its WAL files 0600", async () => {
    const dir = await tempDir();
    const kv = SqliteAccountStore.open(path.join(dir, "account.db"));
    await kv.set("k", new Uint8Array([1]));
    for (const f of ["account.db", "account.db-wal", "account.db-shm"]) expect((await stat(path.join(dir, f))).mode & 0o777, f).toBe(0o600);
    await kv.close();
  });
});

describe("SqliteAccountStore batches", () => {
  it("applies a batch all or nothing: a failing write rolls back the writes before it", async () => {
    const s = await open();
    await s.set("a", new Uint8Array([1]));
    const bad = { key: "c", value: 42 as unknown as Uint8Array };
    await expect(
      s.apply({ kv: [{ key: "a", value: new Uint8Array([2]) }, { key: "b", value: new Uint8Array([2]) }, bad], messages: [msg(1, ALICE, "x")], seen: ["e1"] }),
    ).rejects.toThrow();
    expect([...(await s.get("a"))!]).toEqual([1]);
    expect(await s.get("b")).toBeUndefined();
    expect(await s.getMessage(msg(1, ALICE, "x").messageId)).toBeUndefined();
    expect(await s.isSeen("e1")).toBe(false);
    await s.close();
  });

  it("a process killed with SIGKILL mid-stream of batches leaves each batch whole: all keys of a round or none", async () => {
    const dir = await tempDir();
    const file = path.join(dir, "account.db");
    const writer = `
      const { SqliteAccountStore } = await import(${JSON.stringify(path.resolve("src/client/store/sqlite-store.ts"))});
      const s = SqliteAccountStore.open(${JSON.stringify(file)});
      for (let round = 1; ; round++) {
        const v = new Uint8Array(64 * 1024).fill(round % 256);
        new DataView(v.buffer).setUint32(0, round);
        await s.apply({ kv: ["a", "b", "c"].map((key) => ({ key, value: v })), seen: ["round-" + round] });
        if (round === 3) process.stdout.write("ready\\n");
      }`;
    await killWhileRunning(writer, 200);

    const s = SqliteAccountStore.open(file);
    const values = await Promise.all(["a", "b", "c"].map((k) => s.get(k)));
    // The round sits in the first four bytes: a fast machine writes past 256 rounds before the kill, and the fill
    // byte alone wraps.
    const round = new DataView(values[0]!.buffer, values[0]!.byteOffset, 4).getUint32(0);
    for (const v of values) {
      expect(v!.length).toBe(64 * 1024);
      expect(Buffer.from(v!).equals(Buffer.from(values[0]!))).toBe(true);
      expect(v!.subarray(4).every((b) => b === round % 256)).toBe(true);
    }
    expect(round).toBeGreaterThanOrEqual(3);
    await s.close();
  });

  it("keeps a redelivered message's row (and its receipts) rather than replacing it", async () => {
    const s = await open();
    const m = msg(1, ALICE, "first");
    await s.apply({ messages: [m] });
    await s.apply({ receipts: [{ messageId: m.messageId, readAt: "2026-11-01T00:01:00.000Z" }] });
    await s.apply({ messages: [{ ...m, body: { kind: "text", text: "other" } }] });
    const got = (await s.getMessage(m.messageId))!;
    expect(got.body).toEqual({ kind: "text", text: "first" });
    expect(got.readAt).toBe("2026-11-01T00:01:00.000Z");
    expect(await s.search({ text: "first", limit: 10 })).toHaveLength(1);
    expect(await s.search({ text: "other", limit: 10 })).toHaveLength(0);
    await s.close();
  });
});

describe("paging and search", () => {
  it("pages one conversation newest first with a message-id cursor, ties on time broken stably", async () => {
    const s = await open();
    const all: MessageRecord[] = [];
    // 230 messages with Alice, 3 per second (equal timestamps), and 100 with Bob interleaved.
    for (let i = 0; i < 230; i++) all.push(msg(i, ALICE, `alice ${i}`, T0 + Math.floor(i / 3) * 1000));
    for (let i = 0; i < 100; i++) all.push(msg(1000 + i, BOB, `bob ${i}`, T0 + i * 1500));
    await s.apply({ messages: all.slice(0, 200) });
    await s.apply({ messages: all.slice(200) });
    const pages: string[][] = [];
    let before: string | undefined;
    for (let n = 0; n < 10; n++) {
      const page = await s.messages({ conversation: ALICE, before: before ? { messageId: before } : undefined, limit: 50 });
      if (!page.length) break;
      pages.push(page.map((m) => (m.body as { text: string }).text));
      before = page[page.length - 1].messageId;
    }
    expect(pages.map((p) => p.length)).toEqual([50, 50, 50, 50, 30]);
    expect(pages.flat()).toEqual(Array.from({ length: 230 }, (_, i) => `alice ${229 - i}`));
    // By time: strictly older than the given instant; across conversations when none is given.
    const older = await s.messages({ conversation: BOB, before: { at: T0 + 1500 * 10 }, limit: 100 });
    expect(older.map((m) => (m.body as { text: string }).text)).toEqual(Array.from({ length: 10 }, (_, i) => `bob ${9 - i}`));
    const newest = await s.messages({ limit: 3 });
    expect(newest.map((m) => (m.body as { text: string }).text)).toEqual(["bob 99", "bob 98", "bob 97"]);
    expect(await s.messages({ conversation: ALICE, before: { messageId: "no-such-id" }, limit: 5 })).toEqual([]);
    await s.close();
  });

  it("finds messages by words (any order, last word as prefix, accents folded), newest first, per conversation", async () => {
    const s = await open();
    await s.apply({
      messages: [
        msg(1, ALICE, "The quick brown fox jumps"),
        msg(2, BOB, "a brown fox again, from Bob"),
        msg(3, ALICE, "Crème brûlée tonight?"),
        msg(4, ALICE, "nothing to see"),
        { ...msg(5, BOB, ""), body: { kind: "poll", question: "Dinner where?", options: ["Pizzeria", "Ramen bar"] } },
      ],
    });
    const texts = async (text: string, conversation?: string) =>
      (await s.search({ text, conversation, limit: 10 })).map((m) => m.messageId.slice(-1));
    expect(await texts("brown fox")).toEqual(["2", "1"]);
    expect(await texts("fox brown", ALICE)).toEqual(["1"]);
    expect(await texts("creme brulee")).toEqual(["3"]);
    expect(await texts("qui")).toEqual(["1"]);
    expect(await texts("ramen")).toEqual(["5"]);
    expect(await texts("fox cat")).toEqual([]);
    // FTS5 syntax typed by a user is taken as words, never as a query that fails.
    for (const hostile of ['"', "NEAR(fox", "fox*", "-fox", "fox OR", "AND", "(", "^fox", "'; DROP TABLE messages; --", ""])
      await expect(s.search({ text: hostile, limit: 10 })).resolves.toBeInstanceOf(Array);
    expect(await texts('"brown"')).toEqual(["2", "1"]);
    await s.close();
  });

  it("search follows edits and deletions", async () => {
    const s = await open();
    const m = { ...msg(1, ALICE, "meet at the station"), from: { userId: ALICE, deviceId: 1 } };
    await s.apply({ messages: [m, msg(2, ALICE, "the station is closed")] });
    await s.apply({ edits: [{ messageId: m.messageId, editId: "e1", text: "meet at the harbour", at: "2026-11-01T00:00:05.000Z" }] });
    expect((await s.search({ text: "harbour", limit: 10 })).map((x) => x.messageId)).toEqual([m.messageId]);
    expect((await s.search({ text: "station", limit: 10 })).map((x) => x.messageId)).toEqual([msg(2, ALICE, "").messageId]);
    await s.apply({ remove: [msg(2, ALICE, "").messageId] });
    expect(await s.search({ text: "station", limit: 10 })).toEqual([]);
    await s.close();
  });
});

describe("folding", () => {
  it("keeps one reaction per user, the latest by time, and takes removed ones out", async () => {
    const s = await open();
    const m = msg(1, ALICE, "hello");
    const at = (sec: number) => new Date(T0 + sec * 1000).toISOString();
    await s.apply({ messages: [m] });
    await s.apply({ reactions: [{ messageId: m.messageId, userId: SELF, emoji: "👍", at: at(10) }] });
    await s.apply({ reactions: [{ messageId: m.messageId, userId: ALICE, emoji: "😂", at: at(11) }] });
    await s.apply({ reactions: [{ messageId: m.messageId, userId: SELF, emoji: "❤️", at: at(12) }] });
    // An older change arriving late (another device's copy) does not win.
    await s.apply({ reactions: [{ messageId: m.messageId, userId: SELF, emoji: "👎", at: at(9) }] });
    expect((await s.getMessage(m.messageId))!.reactions.map((r) => [r.userId, r.emoji])).toEqual([
      [ALICE, "😂"],
      [SELF, "❤️"],
    ]);
    await s.apply({ reactions: [{ messageId: m.messageId, userId: ALICE, emoji: null, at: at(13) }] });
    await s.apply({ reactions: [{ messageId: m.messageId, userId: ALICE, emoji: "😂", at: at(11) }] }); // stale re-add
    expect((await s.getMessage(m.messageId))!.reactions.map((r) => r.emoji)).toEqual(["❤️"]);
    await s.close();
  });

  it("folds edits into the current text and keeps the history, original first", async () => {
    const s = await open();
    const m = msg(1, ALICE, "teh text");
    await s.apply({ messages: [m] });
    await s.apply({ edits: [{ messageId: m.messageId, editId: "e2", text: "the text!", at: "2026-11-01T00:00:09.000Z" }] });
    await s.apply({ edits: [{ messageId: m.messageId, editId: "e1", text: "the text", at: "2026-11-01T00:00:05.000Z" }] });
    await s.apply({ edits: [{ messageId: m.messageId, editId: "e1", text: "the text", at: "2026-11-01T00:00:05.000Z" }] }); // redelivered
    const got = (await s.getMessage(m.messageId))!;
    expect(got.body).toEqual({ kind: "text", text: "the text!" });
    expect(got.editHistory.map((e) => e.text)).toEqual(["teh text", "the text", "the text!"]);
    expect(got.editedAt).toBe("2026-11-01T00:00:09.000Z");
    await s.close();
  });

  it("tallies poll votes (changeable, retractable) and RSVPs; removing a message removes what was folded into it", async () => {
    const s = await open();
    const poll = { ...msg(1, ALICE, ""), body: { kind: "poll" as const, question: "When?", options: ["Mon", "Tue", "Wed"], multiple: true } };
    const event = { ...msg(2, ALICE, ""), body: { kind: "event" as const, title: "Party", startsAt: "2026-12-24T18:00:00Z" } };
    const at = (sec: number) => new Date(T0 + sec * 1000).toISOString();
    await s.apply({ messages: [poll, event] });
    await s.apply({
      votes: [
        { pollId: poll.messageId, userId: ALICE, choices: [0, 2], at: at(1) },
        { pollId: poll.messageId, userId: BOB, choices: [2], at: at(2) },
        { pollId: poll.messageId, userId: SELF, choices: [1], at: at(3) },
      ],
      rsvps: [
        { eventId: event.messageId, userId: ALICE, answer: "yes", at: at(1) },
        { eventId: event.messageId, userId: BOB, answer: "maybe", at: at(2) },
      ],
    });
    await s.apply({ votes: [{ pollId: poll.messageId, userId: SELF, choices: [], at: at(4) }] }); // taken back
    await s.apply({ votes: [{ pollId: poll.messageId, userId: BOB, choices: [1, 2], at: at(5) }] }); // changed
    await s.apply({ rsvps: [{ eventId: event.messageId, userId: BOB, answer: "no", at: at(6) }] });
    const [e, p] = await s.messages({ conversation: ALICE, limit: 10 });
    expect(p.tally).toMatchObject({ kind: "poll", counts: [1, 1, 2], voters: 2 });
    expect(e.tally).toMatchObject({ kind: "event", yes: 1, no: 1, maybe: 0 });
    await s.apply({ remove: [poll.messageId] });
    await s.apply({ messages: [poll] }); // the same id again starts from nothing
    expect((await s.getMessage(poll.messageId))!.tally).toMatchObject({ counts: [0, 0, 0], voters: 0 });
    await s.close();
  });
});
