// Live events and revocations lost other than by a Redis reconnect, with real processes, PostgreSQL and Redis: a
// node dies between its commit and its publish (FAILPOINTS=crash-after-commit), a publish fails
// (publish-after-commit), a revocation's publish is lost (revocation-publish). Open streams still get what was
// committed and a deactivated device's socket on another node is still closed, with the default re-check intervals
// (INBOX_RECHECK_MS, SOCKET_REVALIDATE_MS). Each test prints how long the node took to notice.
import { describe, expect, it } from "vitest";
import { DeactivateDeviceDocument, InboxDocument, type InboxSubscription } from "../../src/client/generated/graphql.ts";
import { CRASH_EXIT_CODE } from "../../src/failpoints.ts";
import { HttpTransport, openWs } from "../../src/client/transport.ts";
import { linkNewDevice, registerDevice, type TestDevice } from "../helpers/accounts.ts";
import { sqlClient, usingPostgres, usingRedis, type TestDatabase } from "../helpers/database.ts";
import { LiveMember, mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { collect } from "../helpers/live.ts";
import { sendOpaque, unb64 } from "../helpers/messaging.ts";
import type { NodeProcess } from "../helpers/server.ts";
import { eventually } from "../helpers/wait.ts";
import { faultFixture, storedClientIds } from "./helpers.ts";

const enabled = usingPostgres && usingRedis;
const { cleanups, database, nodes } = faultFixture();
// Bounded waits, far above the default intervals (3 s and 5 s) on a loaded machine; never an assertion on speed.
const NOTICE_MS = 60_000;

const texts = (items: InboxSubscription[]) =>
  items.flatMap((x) => (x.inbox.__typename === "EnvelopeEvent" ? [unb64(x.inbox.envelope.body).split("@")[0]] : []));

/** bob's inbox subscription on `node`, open and past its replay (it has a message sent before it opened). */
async function openInbox(node: NodeProcess, alice: TestDevice, bob: TestDevice) {
  await sendOpaque({ ...alice, http: new HttpTransport(node.url, alice.token) }, bob.userId, "before");
  const ws = openWs(node.url, bob.token);
  cleanups.push(async () => ws.dispose());
  const inbox = collect(ws, InboxDocument);
  await inbox.until((xs) => texts(xs).includes("before"), 30_000, "the replayed message");
  return inbox;
}

/** A group of a and b made through `node`, b's groupEvents subscription on it having seen the welcome. */
async function groupOf(node: NodeProcess) {
  const a = await mlsMember(node.url);
  const b = await mlsMember(node.url);
  const live = new LiveMember(b, node.url);
  cleanups.push(() => live.close());
  await live.feed.connected;
  const groupId = await a.mls.createGroup({ name: "faults", memberUserIds: [b.userId] });
  await live.feed.waitFor((es) => es.some((e) => e.groupId === groupId && e.kind === "WELCOME"), 30_000, "the welcome");
  return { a, live, groupId };
}

/** Points a member's client at another node (the SDK keeps its MLS state; only the server it talks to changes). */
function via(m: MlsMember, node: NodeProcess) {
  Object.assign(m.http, { url: node.url });
}

async function messageStored(db: TestDatabase, senderUserId: string, clientMessageId: string) {
  const sql = await sqlClient(db.url!);
  try {
    return (await storedClientIds(sql, senderUserId)).has(clientMessageId);
  } finally {
    await sql.end();
  }
}

describe.skipIf(!enabled)("lost live events and revocations", () => {
  it("a node crashes between commit and publish: the open stream on another node still gets the envelope", async () => {
    const db = await database();
    const [n1, n2] = await nodes(db, 2, [{ FAILPOINTS: "crash-after-commit" }, {}]);
    const alice = await registerDevice(n2.url);
    const bob = await registerDevice(n2.url);
    const inbox = await openInbox(n2, alice, bob);

    const started = Date.now();
    const sent = sendOpaque({ ...alice, http: new HttpTransport(n1.url, alice.token) }, bob.userId, "crash");
    await expect(sent).rejects.toThrow(); // the node died before answering
    expect(await n1.exited).toBe(CRASH_EXIT_CODE);
    await inbox.until((xs) => texts(xs).includes("crash"), NOTICE_MS, "the envelope committed before the crash");
    const noticedMs = Date.now() - started;
    expect(texts(inbox.items)).toEqual(["before", "crash"]);
    expect(inbox.errors).toEqual([]);
    console.log("crash between commit and publish (1:1):", { noticedMs, recheckMs: 3000 });
  });

  it("a node crashes between commit and publish of a group message: the open group stream on another node still gets it", async () => {
    const db = await database();
    const [n1, n2] = await nodes(db, 2, [{ FAILPOINTS: "crash-after-commit" }, {}]);
    const { a, live, groupId } = await groupOf(n2);
    via(a, n1);
    const started = Date.now();
    await expect(a.mls.send(groupId, text("sent as the node died"))).rejects.toThrow();
    expect(await n1.exited).toBe(CRASH_EXIT_CODE);
    expect(await live.waitForTexts(groupId, 1, NOTICE_MS)).toEqual(["sent as the node died"]);
    const noticedMs = Date.now() - started;
    expect(live.failures).toEqual([]);
    console.log("crash between commit and publish (group):", { noticedMs, recheckMs: 3000 });
  });

  it("a publish fails on a single node: its own open inbox and group streams still get what was committed", async () => {
    const db = await database();
    const [n1] = await nodes(db, 1, { FAILPOINTS: "publish-after-commit" });
    const alice = await registerDevice(n1.url);
    const bob = await registerDevice(n1.url);
    const inbox = await openInbox(n1, alice, bob);
    const started = Date.now();
    const { input } = await sendOpaque(alice, bob.userId, "unpublished");
    expect(await messageStored(db, alice.userId, String(input.clientMessageId))).toBe(true);
    await inbox.until((xs) => texts(xs).includes("unpublished"), NOTICE_MS, "the unpublished envelope");
    const inboxMs = Date.now() - started;

    // Every group event is dropped too, the welcome included: the stream learns of the group from the re-check.
    const { a, live, groupId } = await groupOf(n1);
    const groupStarted = Date.now();
    await a.mls.send(groupId, text("unpublished in a group"));
    expect(await live.waitForTexts(groupId, 1, NOTICE_MS)).toEqual(["unpublished in a group"]);
    const groupMs = Date.now() - groupStarted;
    expect([inbox.errors, live.failures]).toEqual([[], []]);
    console.log("publish lost on one node:", { inboxMs, groupMs, recheckMs: 3000 });
  });

  it("a revocation whose publish is lost: the device's socket on the other node closes within seconds", async () => {
    const db = await database();
    const [n1, n2] = await nodes(db, 2, [{ FAILPOINTS: "revocation-publish" }, {}]);
    const bob = await registerDevice(n1.url);
    const bob2 = await linkNewDevice(n1.url, bob);
    let closedWith: number | null = null;
    const ws = openWs(n2.url, bob2.token, { lazy: false, onClosed: (code) => (closedWith ??= code) });
    cleanups.push(async () => ws.dispose());
    const inbox = collect(ws, InboxDocument);
    // The socket is open and authenticated: a message to bob2 arrives on it.
    await sendOpaque(bob, bob.userId, "to my other device");
    await inbox.until((xs) => texts(xs).includes("to my other device"), 30_000, "a message on bob2's socket");

    const started = Date.now();
    expect((await bob.http.request(DeactivateDeviceDocument, { deviceId: bob2.deviceId })).deactivateDevice).toBe(true);
    await eventually(() => expect(closedWith).toBe(4403), NOTICE_MS, 100);
    const closedMs = Date.now() - started;
    console.log("revocation publish lost:", { closedMs, revalidateMs: 5000 });
  });
});
