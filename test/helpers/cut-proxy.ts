// A loopback TCP proxy that drops the connection once a given number of bytes went through it in one direction
// (client to server: an upload; server to client: a download), once: a real cut connection mid-transfer.
import net from "node:net";

export interface CutProxy {
  url(graphqlUrl: string): string;
  /** Connections it cut so far. */
  cuts: number;
  /** Bytes forwarded in the watched direction. */
  forwarded: number;
  /** Cuts every connection open now (not counted in cuts); new ones go through as before. */
  cutNow(): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number, cutAfterBytes: number, direction: "up" | "down" = "up"): Promise<CutProxy> {
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0, forwarded: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    const forward = (watched: boolean, to: net.Socket) => (chunk: Buffer) => {
      if (watched) {
        state.forwarded += chunk.length;
        if (state.cuts === 0 && state.forwarded >= cutAfterBytes) {
          state.cuts += 1;
          client.destroy();
          upstream.destroy();
          return;
        }
      }
      to.write(chunk);
    };
    client.on("data", forward(direction === "up", upstream));
    upstream.on("data", forward(direction === "down", client));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (graphqlUrl) => {
      const u = new URL(graphqlUrl);
      u.port = String(port);
      return u.toString();
    },
    get cuts() {
      return state.cuts;
    },
    get forwarded() {
      return state.forwarded;
    },
    cutNow() {
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
