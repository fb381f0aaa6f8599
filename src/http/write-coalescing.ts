// Frames sent to one WebSocket during one event-loop turn leave in one write: a send's `next` and `complete` to the
// sender, a burst of envelopes to one recipient. Each ws.send is otherwise its own writev system call, which was
// the largest single item (~17% of busy time) in the server's CPU profile under bench:send. A frame waits at most
// until the end of the turn it was sent in.
import type { Socket } from "node:net";
import type { WebSocket } from "ws";

const corked = new Set<Socket>();
let scheduled = false;

function flush() {
  scheduled = false;
  for (const raw of corked) raw.uncork();
  corked.clear();
}

export function coalesceWrites(ws: WebSocket): void {
  // ws keeps the TCP socket private; cork/uncork on it nest with the ones ws itself wraps each frame in.
  const raw = (ws as unknown as { _socket?: Socket })._socket;
  if (!raw) return;
  const send = ws.send.bind(ws) as (...args: unknown[]) => void;
  ws.send = ((...args: unknown[]) => {
    if (!corked.has(raw) && !raw.destroyed) {
      raw.cork();
      corked.add(raw);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    }
    send(...args);
  }) as WebSocket["send"];
}
