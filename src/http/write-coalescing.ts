// Frames sent to one WebSocket during one event-loop turn leave in one write: the answers of a client's concurrent
// operations, a burst of events on one subscription. Each ws.send is otherwise its own writev system call, which was
// the largest single item (~17% of busy time) in the server's CPU profile under bench:send. A frame waits at most
// until the end of the turn it was sent in.
import type { Socket } from "node:net";
import type { WebSocket } from "ws";

// Below this much unsent data a send counts as done once queued (see sendCoalesced).
const EARLY_DONE_BYTES = 64 * 1024;
const corked = new Set<Socket>();
// The answer of every send that is done once queued: one settled promise, not a promise and a closure per frame.
const DONE = Promise.resolve();
let scheduled = false;

function flush() {
  scheduled = false;
  for (const raw of corked) raw.uncork();
  corked.clear();
}

/**
 * Sends one frame, corking the socket until the end of the turn. graphql-ws waits for the returned promise before
 * it sends a subscription's next event: while little is unsent it resolves as soon as the frame is queued, so a burst
 * of events shares the turn's write; past that it resolves when the data is written, which keeps the backpressure
 * that lets a subscription's own bound catch a client that stopped reading.
 */
export function sendCoalesced(socket: WebSocket, data: string): Promise<void> {
  // ws keeps the TCP socket private; cork/uncork on it nest with the ones ws itself wraps each frame in.
  const raw = (socket as unknown as { _socket?: Socket })._socket;
  if (socket.readyState !== socket.OPEN) return DONE;
  if (raw && !raw.destroyed && !corked.has(raw)) {
    raw.cork();
    corked.add(raw);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }
  if (raw && raw.writableLength < EARLY_DONE_BYTES) {
    socket.send(data);
    return DONE;
  }
  return new Promise((resolve, reject) => socket.send(data, (err) => (err ? reject(err) : resolve())));
}
