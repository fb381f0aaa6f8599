// A loopback TCP proxy that drops the connection carrying the upload once a given number of bytes went through
// (client to server), once: a real cut connection in the middle of an upload.
import net from "node:net";

export interface CutProxy {
  url(graphqlUrl: string): string;
  /** Connections it cut so far. */
  cuts: number;
  /** Bytes forwarded client to server. */
  forwarded: number;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number, cutAfterBytes: number): Promise<CutProxy> {
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0, forwarded: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("data", (chunk: Buffer) => {
      state.forwarded += chunk.length;
      if (state.cuts === 0 && state.forwarded >= cutAfterBytes) {
        state.cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
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
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
