// A lean graphql-ws (graphql-transport-ws) client for load generation: one `ws` socket, the protocol by hand, no
// retries. The SDK's graphql-ws client works too, but at 100,000 sockets in the load process its per-client cost
// would be measured instead of the server's.
import type { DocumentNode } from "graphql";
import WebSocket from "ws";
import { operationPayload } from "../../src/client/transport.ts";

type Next = (payload: { data?: unknown; errors?: unknown[] }) => void;

/** A document's text, or what names it by its persisted hash (the server's list of the SDK's documents). */
export type Operation = string | { query: string; extensions?: Record<string, unknown> };

/** How the load side sends a generated document: by hash, as the SDK does, or as text with BENCH_PERSISTED=false. */
export function operation(doc: DocumentNode): Operation {
  const { query, extensions } = operationPayload(doc, {}, process.env.BENCH_PERSISTED !== "false") as { query: string; extensions?: Record<string, unknown> };
  return extensions ? { query, extensions } : query;
}
const payloadOf = (op: Operation, variables?: Record<string, unknown>) =>
  typeof op === "string" ? { query: op, variables } : { ...op, variables };

export interface GqlSocket {
  ws: WebSocket;
  /** A query or mutation; resolves with `data`, rejects with the GraphQL errors. */
  request<T = Record<string, unknown>>(query: Operation, variables?: Record<string, unknown>): Promise<T>;
  /** A subscription; `onNext` gets every payload. */
  subscribe(query: Operation, onNext: Next, variables?: Record<string, unknown>): string;
  close(): void;
}

export function connectGql(
  httpUrl: string,
  token: string,
  opts: { localAddress?: string; timeoutMs?: number } = {},
): Promise<GqlSocket> {
  const ws = new WebSocket(httpUrl.replace(/^http/, "ws"), "graphql-transport-ws", {
    localAddress: opts.localAddress,
    perMessageDeflate: false,
  });
  const handlers = new Map<string, { next: Next; done?: (err?: unknown) => void }>();
  let seq = 0;
  const sock: GqlSocket = {
    ws,
    request<T>(query: Operation, variables?: Record<string, unknown>) {
      return new Promise<T>((resolve, reject) => {
        const id = String(++seq);
        let result: { data?: unknown; errors?: unknown[] } | undefined;
        handlers.set(id, {
          next: (p) => (result = p),
          done: (err) => {
            if (err) reject(err);
            else if (result?.errors?.length) reject(Object.assign(new Error(JSON.stringify(result.errors)), { errors: result.errors }));
            else resolve(result?.data as T);
          },
        });
        ws.send(JSON.stringify({ id, type: "subscribe", payload: payloadOf(query, variables) }));
      });
    },
    subscribe(query, onNext, variables) {
      const id = String(++seq);
      handlers.set(id, { next: onNext });
      ws.send(JSON.stringify({ id, type: "subscribe", payload: payloadOf(query, variables) }));
      return id;
    },
    close: () => ws.close(),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("connection_ack timeout"));
    }, opts.timeoutMs ?? 30_000);
    ws.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.once("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })));
    ws.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`closed ${code}`));
      for (const h of handlers.values()) h.done?.(new Error(`socket closed ${code}`));
      handlers.clear();
    });
    ws.on("message", (raw) => {
      const m = JSON.parse(raw.toString());
      switch (m.type) {
        case "connection_ack":
          clearTimeout(timer);
          resolve(sock);
          break;
        case "ping":
          ws.send('{"type":"pong"}');
          break;
        case "next":
          handlers.get(m.id)?.next(m.payload);
          break;
        case "error": {
          const h = handlers.get(m.id);
          handlers.delete(m.id);
          h?.done?.(Object.assign(new Error(JSON.stringify(m.payload)), { errors: m.payload }));
          break;
        }
        case "complete": {
          const h = handlers.get(m.id);
          handlers.delete(m.id);
          h?.done?.();
          break;
        }
      }
    });
  });
}
