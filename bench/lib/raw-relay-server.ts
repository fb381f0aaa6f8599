// Baseline server: a bare `ws` relay with JSON frames and no GraphQL, no database. Run as its own process; prints
// its port. A client says {hello: id}; a frame {to, data} is forwarded to the client with that id, a frame
// {all: true, data} to every other client.
import { WebSocketServer, type WebSocket } from "ws";

const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
const clients = new Map<string, WebSocket>();
wss.on("connection", (ws) => {
  let id: string | null = null;
  ws.on("message", (raw) => {
    const msg = JSON.parse(raw.toString());
    if (msg.hello) {
      id = String(msg.hello);
      clients.set(id, ws);
      ws.send(JSON.stringify({ ok: true }));
      return;
    }
    if (msg.all) {
      // Fan-out: the same frame to every other client (the group baseline).
      const frame = JSON.stringify({ from: id, data: msg.data, t: msg.t });
      for (const c of clients.values()) if (c !== ws) c.send(frame);
      return;
    }
    if (msg.to) clients.get(String(msg.to))?.send(JSON.stringify({ from: id, data: msg.data, t: msg.t }));
  });
  ws.on("close", () => id && clients.delete(id));
});
wss.on("listening", () => {
  const a = wss.address();
  console.log(JSON.stringify({ port: typeof a === "object" && a ? a.port : 0 }));
});
