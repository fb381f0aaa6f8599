// Frames sent to one WebSocket during one event-loop turn leave in one write: the answers of a client's concurrent
// operations, a burst of events on one subscription. Each ws.send is otherwise its own writev system call, which was
// the largest single item (~17% of busy time) in the server's CPU profile under bench:send. A frame waits at most
// until the end of the turn it was sent in.
import type { Socket } from "node:net";
import type { WebSocket } from "ws";

const EARLY_CALLBACK_BYTES = 64 * 1024;
const corked = new Set<Socket>();
let scheduled = false;

function flush() {
  scheduled = false;
  for (const raw of corked) raw.uncork();
  corked.clear();
}

type SendCallback = (err?: Error) => void;

export function coalesceWrites(ws: WebSocket): void {
  // ws keeps the TCP socket private; cork/uncork on it nest with the ones ws itself wraps each frame in.
  const raw = (ws as unknown as { _socket?: Socket })._socket;
  if (!raw) return;
  const send = ws.send.bind(ws) as (...args: unknown[]) => void;
  ws.send = ((...args: unknown[]) => {
    if (ws.readyState !== ws.OPEN || raw.destroyed) return send(...args);
    if (!corked.has(raw)) {
      raw.cork();
      corked.add(raw);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    }
    // graphql-ws waits for this callback before it sends a subscription's next event. While little is unsent it is
    // called as soon as the frame is queued, so a burst of events shares the turn's write; past that it is called
    // when the data is written, which keeps the backpressure that lets a subscription's own bound catch a client
    // that stopped reading.
    const last = args[args.length - 1];
    if (typeof last === "function" && raw.writableLength < EARLY_CALLBACK_BYTES) {
      args.pop();
      send(...args);
      process.nextTick(last as SendCallback);
    } else {
      send(...args);
    }
  }) as WebSocket["send"];
}
