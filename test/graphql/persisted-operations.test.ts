// Persisted operations (PERSISTED_OPERATIONS): the SDK's documents by hash over HTTP and graphql-ws, arbitrary
// documents beside them by default (GraphiQL), nothing else in allow-list mode, and the SDK end to end there.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { VignetteClient } from "vignette-messaging/client";
import { InboxDocument, MeDocument, PreKeyStatusDocument } from "../../src/client/generated/graphql.ts";
import { documentHash, HttpTransport, openWs, queryText, wsRequest } from "../../src/client/transport.ts";
import { loadPersistedOperations } from "../../src/graphql/persisted-operations.ts";
import { schema } from "../../src/graphql/index.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { useDevice, useServer } from "../helpers/fixture.ts";
import { gql, postRaw, refusal } from "../helpers/graphql.ts";
import { collect } from "../helpers/live.ts";
import { sendOpaque } from "../helpers/messaging.ts";
import { record, removeTempDirs, tempDir, texts } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

const byHash = (hash: string) => ({ extensions: { persistedQuery: { version: 1, sha256Hash: hash } } });
const me = documentHash(MeDocument)!;
const UNKNOWN = "0".repeat(64);
/** A subscribe message by hash over graphql-ws, as the SDK sends it; resolves with its first result or errors. */
function subscribeByHash(ws: ReturnType<typeof openWs>, hash: string) {
  return new Promise<{ data?: unknown; errors?: { extensions?: { code?: string } }[] }>((resolve) => {
    const stop = ws.subscribe(
      { query: "", ...byHash(hash) },
      {
        next: (v) => (stop(), resolve(v as never)),
        error: (errors) => resolve({ errors: errors as never }),
        complete: () => {},
      },
    );
  });
}

describe("PERSISTED_OPERATIONS=accept (the default)", () => {
  const server = useServer();
  const alice = useDevice(server, { oneTimeKeys: 5 });
  const bob = useDevice(server, { oneTimeKeys: 5 });

  it("runs a persisted hash over HTTP, without the text", async () => {
    const r = await postRaw(server.url, byHash(me), alice.token);
    expect(r).toMatchObject({ status: 200, data: { me: { userId: alice.userId, deviceId: alice.deviceId } } });
    expect(r.errors).toBeUndefined();
    // The hash names the server's own document: variables and extensions cannot change what runs.
    const prefixed = await postRaw(server.url, byHash(`sha256:${me}`), alice.token);
    expect(prefixed.data).toEqual(r.data);
  });

  it("runs persisted queries and subscriptions over graphql-ws", async () => {
    const ws = openWs(server.url, bob.token);
    try {
      expect((await wsRequest(ws, MeDocument)).me.userId).toBe(bob.userId);
      expect((await wsRequest(ws, PreKeyStatusDocument)).preKeyStatus.lowWaterMark).toBeGreaterThanOrEqual(0);
      // The inbox subscription, by hash (collect sends text; this is the SDK's subscribe message).
      const got: unknown[] = [];
      ws.subscribe({ query: "", variables: {}, ...byHash(documentHash(InboxDocument)!) }, {
        next: (v) => void got.push(v),
        error: (e) => void got.push({ failed: e }),
        complete: () => {},
      });
      const { messageId } = await sendOpaque(alice, bob.userId, "by hash");
      await waitFor(
        () => got.some((v) => JSON.stringify(v).includes(messageId)),
        "the envelope on the persisted inbox subscription",
      );
      expect(got.some((v) => "failed" in (v as object))).toBe(false);
      // Run outside envelop (src/graphql/ws-execute.ts), and still in the same timing series as over HTTP.
      expect(await server.app.metrics.registry.metrics()).toMatch(
        /graphql_envelop_phase_execute_count\{operationName="PreKeyStatus",operationType="query"\} [1-9]/,
      );
    } finally {
      await ws.dispose();
    }
  });

  it("refuses an unknown hash with PERSISTED_QUERY_NOT_FOUND over HTTP and graphql-ws", async () => {
    const r = await postRaw(server.url, byHash(UNKNOWN), alice.token);
    expect(r.errors?.[0].extensions?.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    expect(r.data ?? null).toBeNull();
    const ws = openWs(server.url, alice.token);
    try {
      expect((await subscribeByHash(ws, UNKNOWN)).errors?.[0].extensions?.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    } finally {
      await ws.dispose();
    }
  });

  it("still runs arbitrary documents (GraphiQL's) over HTTP and graphql-ws", async () => {
    const page = await fetch(server.url, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/graphiql/i);
    const introspection = await postRaw(server.url, { query: "{ __schema { queryType { name } } }" });
    expect(introspection.data).toEqual({ __schema: { queryType: { name: "Query" } } });
    const adHoc = await postRaw(server.url, { query: "{ me { deviceId } }" }, alice.token);
    expect(adHoc.data).toEqual({ me: { deviceId: alice.deviceId } });
    const ws = openWs(server.url, alice.token);
    try {
      expect(await wsRequest(ws, gql("{ me { userId } }"))).toEqual({ me: { userId: alice.userId } });
      // Sent as text, the SDK's own document runs too.
      expect((await wsRequest(ws, MeDocument, undefined, false)).me.userId).toBe(alice.userId);
    } finally {
      await ws.dispose();
    }
  });
});

describe("PERSISTED_OPERATIONS=allow-list", () => {
  const server = useServer({ PERSISTED_OPERATIONS: "allow-list", GRAPHIQL: "false" });
  const alice = useDevice(server, { oneTimeKeys: 5 });

  afterAll(removeTempDirs);

  it("refuses every document sent as text with PERSISTED_QUERY_REQUIRED, the SDK's own included, before running it", async () => {
    for (const query of ["{ me { deviceId } }", queryText(MeDocument), "{ __schema { queryType { name } } }"]) {
      const r = await postRaw(server.url, { query }, alice.token);
      expect(r.errors?.[0].extensions?.code, query).toBe("PERSISTED_QUERY_REQUIRED");
      expect(r.data ?? null).toBeNull();
    }
    // Text beside a known hash is still text.
    const both = await postRaw(server.url, { query: "{ me { deviceId } }", ...byHash(me) }, alice.token);
    expect(both.errors?.[0].extensions?.code).toBe("PERSISTED_QUERY_REQUIRED");
    expect((await postRaw(server.url, byHash(UNKNOWN), alice.token)).errors?.[0].extensions?.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    expect((await postRaw(server.url, byHash(me), alice.token)).data).toMatchObject({ me: { userId: alice.userId } });
  });

  it("refuses text over graphql-ws too, subscriptions included, and runs hashes", async () => {
    const ws = openWs(server.url, alice.token);
    try {
      expect((await refusal(wsRequest(ws, gql("{ me { userId } }")))).code).toBe("PERSISTED_QUERY_REQUIRED");
      expect((await refusal(wsRequest(ws, MeDocument, undefined, false))).code).toBe("PERSISTED_QUERY_REQUIRED");
      const inbox = collect(ws, InboxDocument); // sends the text
      await expect(inbox.until(() => false, 15_000, "the refusal")).rejects.toMatchObject({ code: "PERSISTED_QUERY_REQUIRED" });
      expect((await wsRequest(ws, MeDocument)).me.userId).toBe(alice.userId);
    } finally {
      await ws.dispose();
    }
  });

  it("the SDK works end to end: register, subscribe, send, receive, read receipts, all by hash", async () => {
    const carol = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("carol") });
    const dave = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("dave") });
    const [rc, rd] = [record(carol), record(dave)];
    try {
      await carol.start();
      await dave.start();
      const sent = await carol.send(dave.userId, { kind: "text", text: "allow-listed hello" });
      await waitFor(() => texts(rd).includes("allow-listed hello"), "dave receives", 60_000);
      // Read receipts go only to senders the reader accepted (a first message is a request: test/consent/).
      await dave.acceptRequest(carol.userId);
      await dave.markRead([rd.messages[0].messageId]);
      await waitFor(() => rc.events.receipt?.some((e) => e.messageId === sent.messageId && e.kind === "READ"), "carol's read receipt", 60_000);
      expect([...(rc.events.error ?? []), ...(rd.events.error ?? [])]).toEqual([]);
      // Nothing fell back to text: every document the SDK used was known.
      expect([MeDocument, InboxDocument].some((d) => carol.http.sentAsText.has(d) || dave.http.sentAsText.has(d))).toBe(false);
    } finally {
      await carol.close();
      await dave.close();
    }
  }, 180_000);
});

describe("PERSISTED_OPERATIONS=off", () => {
  const server = useServer({ PERSISTED_OPERATIONS: "off" });
  const alice = useDevice(server, { oneTimeKeys: 5 });
  afterAll(removeTempDirs);

  it("knows no hashes: the SDK's transport sends the text after PERSISTED_QUERY_NOT_FOUND, and keeps doing so", async () => {
    expect((await postRaw(server.url, byHash(me), alice.token)).errors?.[0].extensions?.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    const http = new HttpTransport(server.url, alice.token);
    expect((await http.request(MeDocument)).me.userId).toBe(alice.userId);
    expect(http.sentAsText.has(MeDocument)).toBe(true);
    expect((await http.request(MeDocument)).me.deviceId).toBe(alice.deviceId);
  });

  it("the SDK still works there: its inbox subscription is refused by hash and taken again as text", async () => {
    const erin = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("erin") });
    const re = record(erin);
    try {
      await erin.start();
      const { messageId } = await sendOpaque(alice, erin.userId, "to erin, by text");
      await waitFor(
        () => re.messages.some((m) => m.messageId === messageId) || re.events.undecryptable?.length,
        "erin's inbox subscription delivers",
        60_000,
      );
      expect(erin.http.sentAsText.has(InboxDocument)).toBe(true);
      expect(re.events.error ?? []).toEqual([]);
    } finally {
      await erin.close();
    }
  }, 120_000);
});

describe("the persisted-operation list at start", () => {
  it("a missing list, or one that does not fit the schema, stops the start; off reads none", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "vg-persisted-"));
    try {
      const missing = path.join(dir, "none.json");
      expect(() => loadPersistedOperations("allow-list", schema, missing)).toThrow(/npm run generate/);
      expect(loadPersistedOperations("off", schema, missing).size).toBe(0);
      const wrong = path.join(dir, "wrong.json");
      await writeFile(wrong, JSON.stringify({ [`sha256:${UNKNOWN}`]: "query X { noSuchField }" }));
      expect(() => loadPersistedOperations("accept", schema, wrong)).toThrow(/does not fit the schema/);
      expect(loadPersistedOperations("accept", schema).size).toBeGreaterThan(40);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
