// The account directory's durability and the content envelope's framing, without a server.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileKeyValueStore } from "../../src/client/account-store.ts";
import { ContentError, PAD_BLOCK, type MessageBody, decodeContent, encodeContent, pad, unpad } from "../../src/client/content.ts";
import { killWhileRunning, removeTempDirs, tempDir } from "../helpers/sdk.ts";

afterAll(removeTempDirs);

describe("FileKeyValueStore", () => {
  it("persists values across reopen, lists by prefix, deletes, and keeps files 0600", async () => {
    const dir = await tempDir();
    const kv = await FileKeyValueStore.open(dir);
    await kv.set("session/abc.1", new Uint8Array([1, 2, 3]));
    await kv.set("session/abc.2", new Uint8Array([4]));
    await kv.set("prekey/7", new Uint8Array([5]));
    const again = await FileKeyValueStore.open(dir);
    expect([...(await again.get("session/abc.1"))!]).toEqual([1, 2, 3]);
    expect((await again.list("session/")).sort()).toEqual(["session/abc.1", "session/abc.2"]);
    await again.delete("session/abc.1");
    expect(await again.get("session/abc.1")).toBeUndefined();
    for (const f of await readdir(dir)) expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
  });

  it("a process killed with SIGKILL in the middle of writes leaves every key whole (old or new value)", async () => {
    const dir = await tempDir();
    // The writer overwrites three keys with 256 KB values whose bytes all equal the round number.
    const writer = `
      const { FileKeyValueStore } = await import(${JSON.stringify(path.resolve("src/client/account-store.ts"))});
      const kv = await FileKeyValueStore.open(${JSON.stringify(dir)});
      for (let round = 1; ; round++) {
        for (const k of ["a", "b", "c"]) await kv.set(k, new Uint8Array(256 * 1024).fill(round % 256));
        if (round === 3) process.stdout.write("ready\\n");
      }`;
    await killWhileRunning(writer, 150);

    const kv = await FileKeyValueStore.open(dir);
    for (const k of ["a", "b", "c"]) {
      const v = (await kv.get(k))!;
      expect(v.length).toBe(256 * 1024);
      expect(v.every((b) => b === v[0])).toBe(true);
      expect(v[0]).toBeGreaterThanOrEqual(3 % 256);
    }
    // Temporary files of the interrupted write are gone after open.
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("content", () => {
  it("pads every content to a multiple of 160 bytes and round-trips each message kind", () => {
    const bodies = [
      { kind: "text", text: "hi" },
      { kind: "noteToSelf", text: "x".repeat(400) },
      { kind: "location", latitude: 52.37, longitude: 4.89, label: "Dam" },
      { kind: "contact", name: "Carol", username: "carol" },
      { kind: "poll", question: "Lunch?", options: ["yes", "no"] },
      { kind: "event", title: "Standup", startsAt: "2026-11-26T09:00:00Z" },
    ] satisfies MessageBody[];
    for (const body of bodies) {
      const bytes = encodeContent({ sentAt: 1, body, expiresInSeconds: 30 });
      expect(bytes.length % PAD_BLOCK).toBe(0);
      expect(decodeContent(bytes)).toEqual({ v: 1, sentAt: 1, body, expiresInSeconds: 30 });
    }
    expect(encodeContent({ sentAt: 1, body: { kind: "text", text: "a" } }).length).toBe(
      encodeContent({ sentAt: 1, body: { kind: "text", text: "a".repeat(50) } }).length,
    );
  });

  it("rejects bad padding, unknown versions and malformed bodies", () => {
    expect(() => unpad(new Uint8Array(160))).toThrow(ContentError);
    const future = pad(Buffer.from(JSON.stringify({ v: 99, sentAt: 1, body: { kind: "text", text: "x" } })));
    expect(() => decodeContent(future)).toThrow(/version/);
    const bad = pad(Buffer.from(JSON.stringify({ v: 1, sentAt: 1, body: { kind: "location", latitude: 500, longitude: 0 } })));
    expect(() => decodeContent(bad)).toThrow(ContentError);
    expect(() => decodeContent(pad(Buffer.from("not json")))).toThrow(ContentError);
  });
});
