// Live events and revocations lost without a bus reconnect (FAILPOINTS drops them after the commit): an open inbox
// or group stream still gets what was committed, and a deactivated device's socket is still closed, because the
// node re-checks the database (INBOX_RECHECK_MS, SOCKET_REVALIDATE_MS). Each block has a control with the re-check
// effectively off, showing the failpoint really loses the event. The same across real nodes: test/faults/.
import { describe, expect, it } from "vitest";
import { DeactivateDeviceDocument, InboxDocument, type InboxSubscription } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";
import type { TestServer } from "../helpers/server.ts";
import { LiveMember, mlsMember, text } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { sendOpaque, unb64 } from "../helpers/messaging.ts";
import { eventually, sleep } from "../helpers/wait.ts";

const OFF = "3600000";
/** What the node's re-checks made up for (vignette_lost_live_events_total), by what. */
async function madeUpFor(server: TestServer): Promise<Record<string, number>> {
  const { values } = await server.app.metrics.lostLiveEvents.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.what), v.value]));
}
const texts = (items: InboxSubscription[]) =>
  items.flatMap((x) => (x.inbox.__typename === "EnvelopeEvent" ? [unb64(x.inbox.envelope.body).split("@")[0]] : []));

/** bob's inbox subscription, open and past its replay (it has the message sent before it opened). */
async function openInbox(url: string, alice: TestDevice, bob: TestDevice) {
  await sendOpaque(alice, bob.userId, "before");
  const ws = openWs(url, bob.token);
  const inbox = collect(ws, InboxDocument);
  await inbox.until((xs) => texts(xs).includes("before"), 20_000, "the replayed message");
  return { ws, inbox };
}

describe("a lost publish after commit, re-checked", () => {
  const server = useServer({ FAILPOINTS: "publish-after-commit", INBOX_RECHECK_MS: "250" });

  it("an open inbox stream still gets envelopes whose live event was dropped", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const { ws, inbox } = await openInbox(server.url, alice, bob);
    try {
      for (const t of ["lost-1", "lost-2", "lost-3"]) await sendOpaque(alice, bob.userId, t);
      await inbox.until((xs) => ["lost-1", "lost-2", "lost-3"].every((t) => texts(xs).includes(t)), 30_000, "the dropped envelopes");
      expect(texts(inbox.items)).toEqual(["before", "lost-1", "lost-2", "lost-3"]);
      expect(inbox.errors).toEqual([]);
      expect((await madeUpFor(server)).inbox).toBeGreaterThan(0);
    } finally {
      await ws.dispose();
    }
  });

  it("an open group stream learns of its membership and gets a group message whose live events were dropped", async () => {
    const a = await mlsMember(server.url);
    const b = await mlsMember(server.url);
    const live = new LiveMember(b, server.url);
    try {
      await live.feed.connected;
      // The groupJoined event and every group event are dropped: b hears of all of it from the re-check only.
      const groupId = await a.mls.createGroup({ name: "quiet", memberUserIds: [b.userId] });
      await a.mls.send(groupId, text("after a lost publish"));
      expect(await live.waitForTexts(groupId, 1, 30_000)).toEqual(["after a lost publish"]);
      expect(live.failures).toEqual([]);
      expect((await madeUpFor(server)).group).toBeGreaterThan(0);
    } finally {
      await live.close();
    }
  });
});

describe("no lost event: the re-check stays out of the way", () => {
  const server = useServer({ INBOX_RECHECK_MS: "100" });

  it("100 sends delivered live to an open stream make no stream re-read its queue", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const { ws, inbox } = await openInbox(server.url, alice, bob);
    try {
      const sent = Array.from({ length: 100 }, (_, i) => `live-${i}`);
      for (const t of sent) await sendOpaque(alice, bob.userId, t);
      await inbox.until((xs) => texts(xs).length === 101, 30_000, "every envelope");
      // Rounds keep running while the test waits for them: several looks at a queue holding all 101 items.
      await sleep(1_000);
      expect(texts(inbox.items)).toEqual(["before", ...sent]);
      expect(await madeUpFor(server)).toEqual({});
    } finally {
      await ws.dispose();
    }
  });
});

describe("control: the same failpoint with the re-check off", () => {
  const server = useServer({ FAILPOINTS: "publish-after-commit", INBOX_RECHECK_MS: OFF });

  it("the envelope does not arrive live (the failpoint drops it)", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url);
    const { ws, inbox } = await openInbox(server.url, alice, bob);
    try {
      await sendOpaque(alice, bob.userId, "dropped");
      // A live event arrives within milliseconds on one node; nothing else would deliver it.
      await sleep(1_500);
      expect(texts(inbox.items)).toEqual(["before"]);
      expect(await madeUpFor(server)).toEqual({});
    } finally {
      await ws.dispose();
    }
  });
});

/** bob2's socket (an open inbox subscription); resolves with its close code. */
function socketOf(url: string, device: TestDevice) {
  let closedWith: number | null = null;
  let onClose: (code: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (onClose = resolve));
  const ws = openWs(url, device.token, {
    lazy: false,
    onClosed: (code) => {
      closedWith = code;
      onClose(code);
    },
  });
  collect(ws, InboxDocument);
  return { ws, closed, code: () => closedWith };
}

/** bob2's socket is open (registered on the node); then bob deactivates bob2. */
async function deactivateWhileOpen(server: TestServer) {
  const bob = await registerDevice(server.url);
  const bob2 = await linkNewDevice(server.url, bob);
  const s = socketOf(server.url, bob2);
  await eventually(() => expect(server.app.http.connections.count(bob2)).toBe(1), 20_000);
  expect((await bob.http.request(DeactivateDeviceDocument, { deviceId: bob2.deviceId })).deactivateDevice).toBe(true);
  return { ...s, bob2 };
}

describe("a lost revocation, re-validated", () => {
  const server = useServer({ FAILPOINTS: "revocation-publish", SOCKET_REVALIDATE_MS: "250" });

  it("the deactivated device's socket closes with 4403 though the revocation event was dropped", async () => {
    const s = await deactivateWhileOpen(server);
    try {
      expect(await Promise.race([s.closed, sleep(30_000).then(() => "still open")])).toBe(4403);
    } finally {
      await s.ws.dispose();
    }
  });
});

describe("control: a lost revocation with re-validation off", () => {
  const server = useServer({ FAILPOINTS: "revocation-publish", SOCKET_REVALIDATE_MS: OFF });

  it("the socket stays open (the failpoint drops the revocation)", async () => {
    const s = await deactivateWhileOpen(server);
    try {
      await sleep(1_500);
      expect(s.code()).toBeNull();
      expect(server.app.http.connections.count(s.bob2)).toBe(1);
    } finally {
      await s.ws.dispose();
    }
  });
});
