// One spelling per id: a UUID sent in upper case is the same id as its lowercase spelling for rate limits, for live
// delivery and for the answers; claimKeyPackages charges every target of its list, not the first 100.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ClaimKeyPackagesDocument,
  ClaimPreKeyBundlesDocument,
  PollInboxDocument,
  SendGroupMessageDocument,
} from "../../src/client/generated/graphql.ts";
import { canonicalUuid, parseEpochMillis, parseInt64 } from "../../src/ids.ts";
import { uuid } from "../../src/graphql/validation.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";
import { refusal } from "../helpers/graphql.ts";
import { EventFeed, mlsMember, text } from "../helpers/groups.ts";
import { history, sendOpaque } from "../helpers/messaging.ts";

describe("the id readers", () => {
  it("spell a UUID one way and refuse what PostgreSQL could not hold", () => {
    const id = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D";
    expect(canonicalUuid(id)).toBe(id.toLowerCase());
    expect(uuid.parse(id)).toBe(id.toLowerCase());
    for (const bad of ["-".repeat(36), `${id}x`, id.replace(/-/g, "_"), "", "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"]) {
      expect(canonicalUuid(bad), bad).toBeNull();
      expect(uuid.safeParse(bad).success, bad).toBe(false);
    }
    expect(parseInt64("9223372036854775807")).toBe(9223372036854775807n);
    for (const bad of ["9223372036854775808", "99999999999999999999", "-1", "1e3", ""]) expect(parseInt64(bad), bad).toBeNull();
    expect(parseEpochMillis("1700000000000")?.getTime()).toBe(1700000000000);
    expect(parseEpochMillis("9999999999999999")).toBeNull();
  });
});

describe("canonical ids for abuse limits", () => {
  const server = useServer({ RATE_LIMITS: "on", RATE_LIMIT_REGISTRATIONS_IP: "off", RATE_LIMIT_BUNDLE_CLAIMS_PER_TARGET: "2/1m" });

  it("case variants of a target's id share one per-target counter", async () => {
    const [alice, carol] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    await carol.http.request(ClaimPreKeyBundlesDocument, { userId: alice.userId });
    const upper = await carol.http.request(ClaimPreKeyBundlesDocument, { userId: alice.userId.toUpperCase() });
    expect(upper.claimPreKeyBundles[0].userId).toBe(alice.userId);
    const mixed = alice.userId.replace(/[a-f]/, (c) => c.toUpperCase());
    expect((await refusal(carol.http.request(ClaimPreKeyBundlesDocument, { userId: mixed }))).code).toBe("RATE_LIMITED");
  });

  it("claimKeyPackages charges every target of a long list, the last included", async () => {
    const [alice, carol] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    // Alice is the 1,500th of the list; the others do not exist (NOT_FOUND), but the charge comes first.
    const userIds = [...Array.from({ length: 1499 }, () => randomUUID()), alice.userId];
    for (let i = 0; i < 2; i++) {
      expect((await refusal(carol.http.request(ClaimKeyPackagesDocument, { userIds }))).code).toBe("NOT_FOUND");
    }
    expect((await refusal(carol.http.request(ClaimPreKeyBundlesDocument, { userId: alice.userId }))).code).toBe("RATE_LIMITED");
  });
});

describe("canonical ids for live delivery", () => {
  const server = useServer();

  it("a group message sent with the group id in upper case reaches an open subscription live, under the lowercase id", async () => {
    const [owner, member] = await Promise.all([mlsMember(server.url), mlsMember(server.url)]);
    const groupId = await owner.mls.createGroup({ name: "case", memberUserIds: [member.userId] });
    const feed = new EventFeed(server.url, member.token);
    try {
      await feed.waitFor((es) => es.some((e) => e.kind === "WELCOME"), 30_000, "the welcome");
      // The owner's SDK spells the id as a client that upper-cases it would.
      const original = owner.http.request.bind(owner.http);
      owner.http.request = ((doc: unknown, vars?: Record<string, unknown>) =>
        original(doc as never, (doc === SendGroupMessageDocument ? { ...vars, groupId: String(vars!.groupId).toUpperCase() } : vars) as never)) as typeof owner.http.request;
      const messageId = await owner.mls.send(groupId, text("upper"));
      expect(messageId.startsWith(`g:${groupId}:`)).toBe(true);
      await feed.waitFor((es) => es.some((e) => e.kind === "APPLICATION" && e.id === messageId), 30_000, "the live application message");
      expect(feed.events.find((e) => e.id === messageId)?.groupId).toBe(groupId);
    } finally {
      await feed.close();
    }
  });

  it("a 1:1 message sent to the recipient's id in upper case reaches their queue, in the one conversation", async () => {
    const [alice, bob] = await Promise.all([registerDevice(server.url), registerDevice(server.url)]);
    const upper = await sendOpaque(alice, bob.userId.toUpperCase(), "upper");
    const lower = await sendOpaque(alice, bob.userId, "lower");
    const { inbox } = await bob.http.request(PollInboxDocument, {});
    const envelopes = inbox.flatMap((e) => (e.__typename === "EnvelopeEvent" ? [e.envelope] : []));
    expect(envelopes.map((e) => e.messageId)).toEqual([upper.messageId, lower.messageId]);
    expect(new Set(envelopes.map((e) => e.conversationId)).size).toBe(1);
    const sent = await history(alice, envelopes[0].conversationId);
    expect(sent.map((m) => m.id).sort()).toEqual([upper.messageId, lower.messageId].sort());
  });
});
