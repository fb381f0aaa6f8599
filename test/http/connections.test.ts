// WebSocket bounds: authentication within WS_AUTH_TIMEOUT_MS, a cap on connections per device and on operations per
// connection, and a client that stops reading is dropped instead of buffering without bound.
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { InboxDocument, PollInboxDocument, SendMessageDocument } from "../../src/client/generated/graphql.ts";
import { queryText, wsUrl } from "../../src/client/transport.ts";
import { nextInput } from "../faults/helpers.ts";
import { opaqueInput } from "../helpers/messaging.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { startServer } from "../helpers/server.ts";
import { useServer, useDevice } from "../helpers/fixture.ts";
import { sleep, waitFor } from "../helpers/wait.ts";

/** A raw graphql-transport-ws socket, so the test controls every frame. */
function rawSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(wsUrl(url), "graphql-transport-ws");
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function closed(ws: WebSocket, withinMs: number): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) return reject(new Error("already closed"));
    const timer = setTimeout(() => reject(new Error(`socket still open after ${withinMs} ms`)), withinMs);
    ws.once("close", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

function messages(ws: WebSocket): { type: string; id?: string; payload?: unknown }[] {
  const out: { type: string; id?: string; payload?: unknown }[] = [];
  ws.on("message", (data) => out.push(JSON.parse(data.toString())));
  return out;
}

async function acked(url: string, token: string): Promise<WebSocket> {
  const ws = await rawSocket(url);
  const ack = new Promise<void>((resolve, reject) => {
    ws.once("message", (d) => (JSON.parse(d.toString()).type === "connection_ack" ? resolve() : reject(new Error(d.toString()))));
    ws.once("close", (code) => reject(new Error(`closed with ${code}`)));
  });
  ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
  await ack;
  return ws;
}

const until = (cond: () => boolean, ms: number) => waitFor(cond, "the connection state", ms);

describe("WebSocket bounds (defaults)", () => {
  const server = useServer();
  const alice = useDevice(server);

  it("closes a socket that does not authenticate within the default 3 s with 4408", async () => {
    const ws = await rawSocket(server.url);
    const started = Date.now();
    const { code } = await closed(ws, 10_000);
    expect(code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
  });

  it("closes a socket that authenticates with a wrong token with 4403", async () => {
    const ws = await rawSocket(server.url);
    const done = closed(ws, 5_000);
    ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: "Bearer vgt_wrong" } }));
    expect((await done).code).toBe(4403);
  });

  it("refuses operations before connection_init with 4401", async () => {
    const ws = await rawSocket(server.url);
    const done = closed(ws, 5_000);
    ws.send(JSON.stringify({ type: "subscribe", id: "1", payload: { query: "{ me { deviceId } }" } }));
    expect((await done).code).toBe(4401);
  });

  it("keeps an authenticated socket open past the auth timeout", async () => {
    const ws = await acked(server.url, alice.token);
    await sleep(3_500);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});

describe("WebSocket bounds (configured)", () => {
  const server = useServer({
    WS_AUTH_TIMEOUT_MS: "500",
    MAX_CONNECTIONS_PER_DEVICE: "2",
    MAX_OPERATIONS_PER_CONNECTION: "3",
    WS_MAX_BUFFERED_BYTES: String(256 * 1024),
  });
  const alice = useDevice(server);

  it("honours WS_AUTH_TIMEOUT_MS", async () => {
    const ws = await rawSocket(server.url);
    expect((await closed(ws, 5_000)).code).toBe(4408);
  });

  it("closes a socket that pings but never sends connection_init with 4408 too", async () => {
    const ws = await rawSocket(server.url);
    const done = closed(ws, 5_000);
    const pinging = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "ping" })), 100);
    try {
      expect((await done).code).toBe(4408);
    } finally {
      clearInterval(pinging);
    }
  });

  it("refuses a device's third connection with 4029 and accepts one again after another closed", async () => {
    const a = await acked(server.url, alice.token);
    const b = await acked(server.url, alice.token);
    const c = await rawSocket(server.url);
    const cClosed = closed(c, 5_000);
    c.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${alice.token}` } }));
    expect((await cClosed).code).toBe(4029);
    const aClosed = closed(a, 5_000);
    a.close();
    await aClosed;
    await until(() => server.app.http.connections.count(alice) === 1, 5_000);
    const d = await acked(server.url, alice.token);
    expect(server.app.http.connections.count(alice)).toBe(2);
    b.close();
    d.close();
    await until(() => server.app.http.connections.count(alice) === 0, 5_000);
  });

  it("refuses operations beyond 3 in flight on one connection with LIMIT_EXCEEDED, and the connection stays usable", async () => {
    const ws = await acked(server.url, alice.token);
    const got = messages(ws);
    // Sent in one burst, so they are all in flight at once.
    for (let i = 1; i <= 12; i++) {
      ws.send(JSON.stringify({ type: "subscribe", id: String(i), payload: { query: "{ me { deviceId } preKeyStatus { isLow } }" } }));
    }
    await until(() => got.filter((m) => m.type === "complete" || m.type === "error").length === 12, 10_000);
    const refused = got.filter(
      (m) => m.type === "error" && (m.payload as { extensions?: { code?: string } }[])[0]?.extensions?.code === "LIMIT_EXCEEDED",
    );
    const answered = got.filter((m) => m.type === "next");
    expect(refused.length).toBeGreaterThan(0);
    expect(answered.length).toBeGreaterThanOrEqual(3);
    expect(refused.length + answered.length).toBe(12);
    ws.send(JSON.stringify({ type: "subscribe", id: "after", payload: { query: "{ me { deviceId } }" } }));
    await until(() => got.some((m) => m.id === "after" && m.type === "next"), 5_000);
    ws.close();
  });
});

describe("slow consumers", () => {
  const server = useServer({ WS_MAX_BUFFERED_BYTES: String(256 * 1024) });
  const alice = useDevice(server);

  it("drops a client that stops reading once its unsent data passes WS_MAX_BUFFERED_BYTES", async () => {
    const ws = await acked(server.url, alice.token);
    expect(server.app.http.connections.count(alice)).toBe(1);
    // Stop reading: the kernel buffers fill, then the server's socket buffer grows.
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = "{ __schema { types { name description fields { name description args { name description } } } } }";
    let sent = 0;
    while (server.app.http.connections.count(alice) > 0 && sent < 5_000) {
      // Bursts under the 100-operations cap, so the answers are large ones, not refusals.
      for (let i = 0; i < 50; i++) ws.send(JSON.stringify({ type: "subscribe", id: `q${sent++}`, payload: { query: big } }));
      await sleep(100);
    }
    expect(server.app.http.connections.count(alice)).toBe(0);
    ws.terminate();
  });

  it("ends the inbox of a device that stops reading, and its queue keeps every envelope for the next read", async () => {
    const slow = await startServer({ INBOX_BUFFER_LIMIT: "10" });
    try {
      const sender = await registerDevice(slow.url);
      const reader = await registerDevice(slow.url);
      const ws = await acked(slow.url, reader.token);
      const got = messages(ws);
      ws.send(JSON.stringify({ type: "subscribe", id: "inbox", payload: { query: queryText(InboxDocument) } }));
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const template = await opaqueInput(sender, reader.userId, "x");
      const big = "A".repeat(40_000); // base64 of 30,000 bytes: 200 of them overflow the socket buffers
      for (let i = 0; i < 200; i++) {
        const input = nextInput(template, i);
        input.envelopes = input.envelopes.map((e) => ({ ...e, body: big }));
        await sender.http.request(SendMessageDocument, { input });
      }
      (ws as unknown as { _socket: { resume(): void } })._socket.resume();
      // The server gave up on this subscriber: its inbox subscription ended with LIMIT_EXCEEDED (or the socket closed).
      await until(
        () =>
          ws.readyState !== WebSocket.OPEN ||
          got.some((m) => m.id === "inbox" && m.type === "error" && JSON.stringify(m.payload).includes("LIMIT_EXCEEDED")),
        30_000,
      );
      const delivered = got.filter((m) => m.id === "inbox" && m.type === "next").length;
      expect(delivered).toBeLessThan(200);
      ws.terminate();
      // Nothing was lost: the whole queue is there for the next read.
      const { inbox } = await reader.http.request(PollInboxDocument, { first: 500 });
      expect(inbox.filter((e) => e.__typename === "EnvelopeEvent")).toHaveLength(200);
    } finally {
      await slow.close();
    }
  }, 180_000); // 200 sends of 30 KB on a loaded machine
});
