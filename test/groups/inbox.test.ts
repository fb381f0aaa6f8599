// Group events through the device inbox (the `inbox` subscription, acknowledged with ackEnvelopes), a low key
// package stock told to the device, and a group id used as a conversation id for typing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AckEnvelopesDocument,
  ClaimKeyPackagesDocument,
  GroupInboxDocument,
  KeyPackageStatusDocument,
  PendingGroupEventsDocument,
  SetTypingDocument,
  TypingDocument,
} from "../../src/client/generated/graphql.ts";
import type { GroupEventData } from "../../src/client/mls/groups.ts";
import { openWs, operationPayload } from "../../src/client/transport.ts";
import WebSocket from "ws";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { sleep } from "../helpers/wait.ts";

describe("group events in the inbox", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember, c: MlsMember;

  beforeAll(async () => {
    server = await startServer({ KEY_PACKAGE_LOW_WATER_MARK: "3" });
    [a, b, c] = await Promise.all([mlsMember(server.url, 3), mlsMember(server.url, 3), mlsMember(server.url, 3)]);
  }, 180_000);
  afterAll(() => server?.close());

  it("delivers welcome and messages through `inbox`, in order; ackEnvelopes moves the group cursor", async () => {
    const ws = openWs(server.url, b.token);
    const inbox = collect(ws, GroupInboxDocument);
    try {
      const groupId = await a.mls.createGroup({ name: "inbox", memberUserIds: [b.userId] });
      const group = (items: typeof inbox.items) =>
        items.flatMap((i) => (i.inbox.__typename === "GroupEvent" ? [i.inbox as GroupEventData] : []));
      await inbox.until((items) => group(items).some((e) => e.kind === "WELCOME"), 15_000, "the welcome");
      for (const e of group(inbox.items)) await b.mls.handle(e);
      await a.mls.send(groupId, text("via the inbox"));
      await inbox.until((items) => group(items).some((e) => e.kind === "APPLICATION"), 15_000, "the message");
      const updates = [];
      for (const e of group(inbox.items)) updates.push(await b.mls.handle(e));
      expect(updates.filter((u) => u?.plaintext).map((u) => Buffer.from(u!.plaintext!).toString())).toEqual(["via the inbox"]);
      const seqs = group(inbox.items).map((e) => e.seq);
      expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);

      const ids = group(inbox.items).map((e) => e.id);
      const { ackEnvelopes } = await b.http.request(AckEnvelopesDocument, { ids });
      expect(ackEnvelopes).toBe(ids.length);
      const { pendingGroupEvents } = await b.http.request(PendingGroupEventsDocument, { groupId });
      expect(pendingGroupEvents).toEqual([]);

      // Claiming b's key packages down to the low-water mark tells b's device to upload more.
      await c.http.request(ClaimKeyPackagesDocument, { userIds: [b.userId] });
      await inbox.until((items) => items.some((i) => i.inbox.__typename === "KeyPackagesLowEvent"), 15_000, "key packages low");
      expect(await b.mls.keyPackages.replenish(5)).toBeGreaterThan(0);
      expect((await b.http.request(KeyPackageStatusDocument)).keyPackageStatus.isLow).toBe(false);
    } finally {
      inbox.stop();
      await ws.dispose();
    }
  });

  it("members on one node get one group message as the same payload, each under its own subscription id", async () => {
    // Raw graphql-transport-ws sockets, so that the frames are seen as the server wrote them: the server serialises a
    // result every member shares once and splices it into each member's message (src/http/graphql-ws.ts).
    const frames = new Map<string, string[]>();
    const open = (token: string, id: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(server.url.replace(/^http/, "ws"), "graphql-transport-ws");
        frames.set(id, []);
        ws.on("error", reject);
        ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })));
        ws.on("message", (raw) => {
          const text = String(raw);
          if (JSON.parse(text).type === "connection_ack") {
            ws.send(JSON.stringify({ id, type: "subscribe", payload: operationPayload(GroupInboxDocument, {}, true) }));
            resolve(ws);
          } else frames.get(id)!.push(text);
        });
      });
    const sockets = [await open(b.token, "bob-1"), await open(c.token, "cyd-7")];
    try {
      const groupId = await a.mls.createGroup({ name: "shared", memberUserIds: [b.userId, c.userId] });
      const application = (id: string) =>
        frames.get(id)!.filter((f) => (JSON.parse(f).payload?.data?.inbox as { kind?: string } | undefined)?.kind === "APPLICATION");
      await sleep(300); // the welcome and the member sockets' group subscriptions
      await a.mls.send(groupId, text("one payload"));
      for (let t = 0; t < 150 && (application("bob-1").length === 0 || application("cyd-7").length === 0); t++) await sleep(100);
      const [bob, cyd] = [application("bob-1"), application("cyd-7")];
      expect([bob.length, cyd.length]).toEqual([1, 1]);
      const parsed = [JSON.parse(bob[0]), JSON.parse(cyd[0])];
      expect(parsed.map((m) => [m.id, m.type])).toEqual([["bob-1", "next"], ["cyd-7", "next"]]);
      expect(parsed[0].payload).toEqual(parsed[1].payload);
      expect(parsed[0].payload.data.inbox).toMatchObject({ __typename: "GroupEvent", groupId, kind: "APPLICATION", senderUserId: a.userId });
      // Byte for byte what graphql-ws itself would have written.
      for (const [f, m] of [[bob[0], parsed[0]], [cyd[0], parsed[1]]] as const) expect(f).toBe(JSON.stringify({ id: m.id, type: "next", payload: m.payload }));
    } finally {
      for (const ws of sockets) ws.close();
    }
  });

  it("a group id works as a conversation id for typing; outsiders are refused", async () => {
    const groupId = await a.mls.createGroup({ name: "typing", memberUserIds: [b.userId] });
    const ws = openWs(server.url, b.token);
    const typing = collect(ws, TypingDocument, { conversationId: groupId });
    try {
      await sleep(200); // the subscription is registered before the event
      await a.http.request(SetTypingDocument, { conversationId: groupId, isTyping: true });
      await typing.until((items) => items.some((t) => t.typing.userId === a.userId && t.typing.isTyping), 15_000, "typing");
      await expect(c.http.request(SetTypingDocument, { conversationId: groupId, isTyping: true })).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
    } finally {
      typing.stop();
      await ws.dispose();
    }
  });
});
