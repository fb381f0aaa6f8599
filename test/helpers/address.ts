// Clients calling from another loopback address (127.0.0.2, ...): a second client IP for the per-IP limits, with no
// proxy or header in between (the whole of 127.0.0.0/8 is the loopback interface on Linux).
import { request } from "node:http";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { GraphQLErrorShape } from "../../src/client/transport.ts";
import { wsUrl } from "../../src/client/transport.ts";

export const SECOND_IP = "127.0.0.2";

/** POSTs a GraphQL request from `localAddress`; answers status, data and errors. */
export function postFrom(
  localAddress: string,
  url: string,
  body: { query: string; variables?: Record<string, unknown> },
  token?: string,
): Promise<{ status: number; data?: unknown; errors?: GraphQLErrorShape[] }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        localAddress,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ...JSON.parse(text) }));
      },
    );
    req.once("error", reject);
    req.end(payload);
  });
}

/** A raw WebSocket from `localAddress` (headers: e.g. X-Forwarded-For); resolves once open or with the refusal. */
export function socketFrom(
  localAddress: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket; refusedWith?: number }> {
  const ws = new WebSocket(wsUrl(url), "graphql-transport-ws", { localAddress, headers });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ ws, refusedWith: res.statusCode });
      res.resume();
    });
    ws.once("error", (err) => reject(err));
  });
}

/** A graphql-ws client (not lazy: it connects at once) from `localAddress`. */
export function wsClientFrom(localAddress: string, url: string, token: string): Client {
  class FromAddress extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { localAddress });
    }
  }
  return createClient({
    url: wsUrl(url),
    webSocketImpl: FromAddress,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {},
  });
}
