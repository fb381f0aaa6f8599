// MAX_CONNECTIONS_PER_IP: WebSockets per client address, counted from the upgrade to the close, so sockets that never
// authenticate (each held up to WS_AUTH_TIMEOUT_MS) count as much as authenticated ones. One count per process.
import type { IncomingMessage } from "node:http";
import type { WebSocket, WebSocketServer } from "ws";

/** Refuses the upgrade with HTTP 429 once `max` sockets from the caller's address are open (max 0: no cap). */
export function capConnectionsPerIp(wss: WebSocketServer, max: number, addressOf: (req: IncomingMessage) => string): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  const addresses = new WeakMap<WebSocket, string>();
  // ws answers a refusal of the one-argument form with 401 always; the callback form lets it be 429. Called at once,
  // it completes the upgrade (and emits "connection", which counts it) in the same turn: no other upgrade can pass
  // the check in between.
  wss.options.verifyClient = (info, done) => {
    if ((open.get(addressOf(info.req)) ?? 0) < max) return done(true);
    done(false, 429, "too many connections from this address");
  };
  function onClose(this: WebSocket) {
    const address = addresses.get(this)!;
    const n = open.get(address)! - 1;
    if (n > 0) open.set(address, n);
    else open.delete(address);
  }
  // Registered before the graphql-ws glue: a socket is counted before any of its frames are read.
  wss.on("connection", (socket: WebSocket, req: IncomingMessage) => {
    const address = addressOf(req);
    addresses.set(socket, address);
    open.set(address, (open.get(address) ?? 0) + 1);
    socket.once("close", onClose);
  });
}
