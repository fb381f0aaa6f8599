// The SDK's hot operations over its graphql-ws connection (src/client/socket-route.ts): while a client is started,
// sends, acknowledgements and read marks make no HTTP request; errors come back with the same codes as over
// HTTP; and when the connection is cut with sends in flight, every message still arrives exactly once (the ones the
// socket lost go over HTTP, idempotent by clientMessageId), and the socket carries them again once it is back.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import * as documents from "../../src/client/generated/graphql.ts";
import { SendMessageDocument } from "../../src/client/generated/graphql.ts";
import { documentHash, GraphQLRequestError } from "../../src/client/transport.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startCutProxy, type CutProxy } from "../helpers/cut-proxy.ts";
import { record, removeTempDirs, tempDir, texts, type Recorded } from "../helpers/sdk.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

// The generated documents by the hash the SDK sends in place of their text.
const byHash = new Map(
  Object.entries(documents).flatMap(([name, doc]) => {
    const hash = name.endsWith("Document") ? documentHash(doc as never) : null;
    return hash ? [[hash, name.slice(0, -"Document".length)] as const] : [];
  }),
);

/** Records the operation name of each GraphQL request this process POSTs from now on (real requests, only watched). */
function watchPosts() {
  const names: string[] = [];
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
    if (init?.method === "POST" && typeof init.body === "string") {
      const body = JSON.parse(init.body) as { query?: string; extensions?: { persistedQuery?: { sha256Hash?: string } } };
      const hash = body.extensions?.persistedQuery?.sha256Hash;
      names.push((hash && byHash.get(hash)) || body.query?.match(/(?:mutation|query)\s+(\w+)/)?.[1] || "unknown");
    }
    return real(input, init);
  });
  return names;
}

describe("SDK operations over the graphql-ws connection", () => {
  let server: TestServer;
  let proxy: CutProxy;
  let alice: VignetteClient, bob: VignetteClient;
  let ra: Recorded, rb: Recorded;

  beforeAll(async () => {
    server = await startServer();
    proxy = await startCutProxy(Number(new URL(server.url).port), Number.MAX_SAFE_INTEGER);
    alice = await VignetteClient.register({ server: proxy.url(server.url), dir: await tempDir(), username: uniqueUsername("alice") });
    bob = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("bob") });
    ra = record(alice);
    rb = record(bob);
    await Promise.all([alice.start(), bob.start()]);
    // The session's first message, so what is measured below is the steady state.
    await alice.send(bob.userId, "first");
    await waitFor(() => texts(rb).includes("first"), "first message");
    await bob.acceptRequest(alice.userId); // (receipts go only to senders the reader accepted)
  }, 120_000);

  afterEach(() => vi.restoreAllMocks());

  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await proxy?.close();
    await server?.close();
    await removeTempDirs();
  });

  it("sends, acknowledgements, receipts and read marks of started clients make no HTTP request", async () => {
    const posts = watchPosts();
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => alice.send(bob.userId, `burst ${i}`)));
    await waitFor(() => texts(rb).filter((t) => t.startsWith("burst ")).length === 20, "bob has the burst");
    const ids = new Set(sent.map((s) => s.messageId));
    await waitFor(() => (ra.events.receipt ?? []).filter((r) => ids.has(r.messageId) && r.kind === "DELIVERED").length === 20, "delivered");
    expect(await bob.markRead([...ids])).toBe(20);
    await waitFor(() => (ra.events.receipt ?? []).filter((r) => ids.has(r.messageId) && r.kind === "READ").length === 20, "read");
    const hot = ["SendMessage", "AckEnvelopes", "MarkRead", "unknown"];
    expect(posts.filter((n) => hot.includes(n))).toEqual([]);
  });

  it.each([
    ["a body that is not base64", { body: "not base64 !!", deviceId: 1 }, "BAD_USER_INPUT"],
    ["an envelope for a device bob does not have", { body: "AAAA", deviceId: 9 }, "MISMATCHED_DEVICES"],
  ])("%s: refused over the socket with the code HTTP gives", async (_, envelope, code) => {
    const input = () => ({
      clientMessageId: crypto.randomUUID(),
      recipientUserId: bob.userId,
      messageType: "TEXT",
      envelopes: [{ registrationId: 1, type: 2, ...envelope }],
    });
    const route = alice.http.route!;
    expect(route.carries(SendMessageDocument)).toBe(true);
    const posts = watchPosts();
    const overSocket = await alice.http.request(SendMessageDocument, { input: input() } as never).catch((e: unknown) => e);
    expect(posts).toEqual([]);
    alice.http.route = null;
    const overHttp = await alice.http.request(SendMessageDocument, { input: input() } as never).catch((e: unknown) => e);
    alice.http.route = route;
    expect(posts).toEqual(["SendMessage"]);
    expect([(overSocket as GraphQLRequestError).code, (overHttp as GraphQLRequestError).code]).toEqual([code, code]);
    expect(route.carries(SendMessageDocument)).toBe(true);
  });

  it("sends in flight when the connection is cut arrive exactly once; the socket carries them again once it is back", async () => {
    const posts = watchPosts();
    const sends = Array.from({ length: 30 }, (_, i) => alice.send(bob.userId, `cut ${i}`));
    await waitFor(() => texts(rb).some((t) => t.startsWith("cut ")), "the first of them reached bob");
    proxy.cutNow();
    const afterCut = Array.from({ length: 5 }, (_, i) => alice.send(bob.userId, `after cut ${i}`));
    await Promise.all([...sends, ...afterCut]);
    const want = [...Array.from({ length: 30 }, (_, i) => `cut ${i}`), ...Array.from({ length: 5 }, (_, i) => `after cut ${i}`)];
    await waitFor(() => want.every((t) => texts(rb).includes(t)), "every message reached bob");
    for (const t of want) expect(texts(rb).filter((x) => x === t)).toHaveLength(1);
    expect(posts.filter((n) => n === "SendMessage").length).toBeGreaterThan(0);

    await waitFor(() => alice.http.route?.carries(SendMessageDocument) === true, "the socket is back");
    const before = posts.length;
    await alice.send(bob.userId, "back on the socket");
    await waitFor(() => texts(rb).includes("back on the socket"), "arrived");
    expect(posts.slice(before).filter((n) => n === "SendMessage")).toEqual([]);
  }, 60_000);
});
