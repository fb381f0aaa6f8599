// graphql-ws (graphql-transport-ws) on a `ws` server: graphql-ws's own protocol server (makeServer) with glue of our
// own instead of graphql-ws/use/ws. That glue keeps, for every connection's whole life, a dozen closures, two timers
// and the frame of an async message handler holding the raw subscribe message (Buffer and string) while a
// subscription runs. Here a connection costs one small adapter object, one message listener and one close listener,
// and node-wide timers ping every socket and close those that did not authenticate in time (graphql-ws's own
// connection-init timer stays referenced by its connection for the connection's life, fired or not).
import { CloseCode, handleProtocols, makeServer, type ServerOptions, type WebSocket as GqlSocket } from "graphql-ws";
import type { IncomingMessage } from "node:http";
import type { WebSocket, WebSocketServer } from "ws";
import type { ExecutionResult, FormattedExecutionResult } from "graphql";
import type { Logger } from "../logger.ts";
import { resultJson } from "../graphql/shared-results.ts";
import { sendCoalesced } from "./write-coalescing.ts";

/** What graphql-ws hands our hooks as ctx.extra. `request` is there until onConnect has read what it needs. */
export interface WsExtra {
  readonly socket: WebSocket;
  request?: IncomingMessage;
}

// graphql-ws serialises each message whole, a next message's result inside it. Here the result goes in as a
// placeholder and its JSON (resultJson: serialised once when many subscribers share the result) takes the placeholder's
// place in the socket's send. graphql-ws stringifies a message and hands it to send in one synchronous step, so the
// JSON waits in one variable between the two. The payload is the message's last member: the placeholder ends it.
const PLACEHOLDER = "\u0000result";
const PLACEHOLDER_TAIL = `${JSON.stringify(PLACEHOLDER)}}`;
let pendingJson: string | null = null;

class ResultPayload {
  constructor(private readonly result: ExecutionResult | FormattedExecutionResult) {}

  toJSON(): string {
    pendingJson = resultJson(this.result);
    return PLACEHOLDER;
  }
}

// Typed as the result it stands for: graphql-ws only checks that the payload is an object, then stringifies it.
function payloadOf(result: ExecutionResult | FormattedExecutionResult): FormattedExecutionResult {
  return new ResultPayload(result) as FormattedExecutionResult;
}

/** The message with its result's JSON in place of the placeholder (what graphql-ws would have sent). */
function withResult(data: string): string {
  const json = pendingJson;
  if (json === null) return data;
  pendingJson = null;
  return data.endsWith(PLACEHOLDER_TAIL) ? `${data.slice(0, -PLACEHOLDER_TAIL.length)}${json}}` : data;
}

class Adapter implements GqlSocket {
  constructor(
    private readonly socket: WebSocket,
    private readonly onError: (socket: WebSocket, err: unknown) => void,
  ) {}

  get protocol(): string {
    return this.socket.protocol;
  }

  send(data: string): Promise<void> {
    return sendCoalesced(this.socket, withResult(data));
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(cb: (data: string) => Promise<void>): void {
    const { socket, onError } = this;
    // Not an async listener: the promise of a subscribe message stays pending as long as the subscription runs,
    // and the listener's frame (the raw message) with it.
    socket.on("message", (event) => void cb(String(event)).catch((err) => onError(socket, err)));
  }
}

/**
 * Serves graphql-ws on `wss`. Sockets that have not answered the previous ping when the next one is due (every
 * `keepAliveMs`) are terminated, as graphql-ws/use/ws does per socket; sockets that sent no connection_init within
 * `connectionInitWaitTimeout` are closed with 4408, as graphql-ws does. Returns a stop function for the timers.
 */
export function serveGraphqlWs<E extends WsExtra>(
  options: ServerOptions<Record<string, unknown> | undefined, E>,
  wss: WebSocketServer,
  logger: Logger,
  keepAliveMs = 12_000,
): () => void {
  const initTimeoutMs = options.connectionInitWaitTimeout ?? 3_000;
  // Sockets waiting for their connection_init, by deadline: inserted in deadline order, so a sweep stops at the first
  // one still in time.
  const awaitingInit = new Map<WebSocket, number>();
  const server = makeServer({
    ...options,
    connectionInitWaitTimeout: 0,
    onConnect: (ctx) => {
      awaitingInit.delete(ctx.extra.socket);
      return options.onConnect?.(ctx);
    },
    onNext: (ctx, id, payload, args, result) => {
      const replaced = options.onNext?.(ctx, id, payload, args, result);
      if (replaced instanceof Promise) return replaced.then((r) => payloadOf(r ?? result));
      return payloadOf(replaced ?? result);
    },
  });
  wss.options.handleProtocols = handleProtocols;
  const fail = (socket: WebSocket, err: unknown) => {
    logger.error({ err: (err as Error)?.message ?? String(err) }, "websocket message handling failed");
    socket.close(CloseCode.InternalServerError, "Internal server error");
  };
  function onSocketError(this: WebSocket, err: Error) {
    logger.warn({ err: err.message }, "websocket error");
    this.close(CloseCode.InternalServerError, "Internal server error");
  }
  const unanswered = new Set<WebSocket>();
  function onPong(this: WebSocket) {
    unanswered.delete(this);
  }
  // The HTTP server's errors reach the WebSocket server too; without a listener they would throw.
  wss.on("error", (err) => {
    logger.error({ err: err.message }, "websocket server error");
    for (const socket of wss.clients) socket.close(CloseCode.InternalServerError, "Internal server error");
  });
  // `on`, not `once`: a once-wrapper is a bound function given a property, ~300 bytes per listener per connection.
  // Both fire once anyway (a socket closes once; an error closes the socket).
  wss.on("connection", (socket: WebSocket, request: IncomingMessage) => {
    socket.on("error", onSocketError);
    socket.on("pong", onPong);
    if (initTimeoutMs > 0 && Number.isFinite(initTimeoutMs)) awaitingInit.set(socket, Date.now() + initTimeoutMs);
    const closed = server.opened(new Adapter(socket, fail), { socket, request } as E);
    socket.on("close", (code: number, reason: Buffer) => {
      unanswered.delete(socket);
      awaitingInit.delete(socket);
      closed(code, String(reason)).catch((err) => logger.warn({ err: (err as Error).message }, "websocket close hook failed"));
    });
  });
  const initTimer = setInterval(
    () => {
      const now = Date.now();
      for (const [socket, deadline] of awaitingInit) {
        if (deadline > now) break;
        awaitingInit.delete(socket);
        socket.close(CloseCode.ConnectionInitialisationTimeout, "Connection initialisation timeout");
      }
    },
    Math.max(50, Math.min(1_000, initTimeoutMs / 4)),
  );
  initTimer.unref();
  const timer = setInterval(() => {
    for (const socket of unanswered) socket.terminate();
    unanswered.clear();
    for (const socket of wss.clients) {
      if (socket.readyState !== socket.OPEN) continue;
      unanswered.add(socket);
      socket.ping();
    }
  }, keepAliveMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearInterval(initTimer);
  };
}
