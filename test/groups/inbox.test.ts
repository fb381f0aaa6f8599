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
import { openWs } from "../../src/client/transport.ts";
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
