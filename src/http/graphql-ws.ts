// graphql-ws (graphql-transport-ws) on a `ws` server: graphql-ws's own protocol server (makeServer) with glue of our
// own instead of graphql-ws/use/ws. That glue keeps, for every connection's whole life, a dozen closures, two timers
// and the frame of an async message handler holding the raw subscribe message (Buffer and string) while a
// subscription runs. Here a connection costs one small adapter object, one message listener and one close listener,
// and node-wide timers ping every socket and close those that did not authenticate in time (graphql-ws's own
// connection-init timer stays referenced by its connection for the connection's life, fired or not).
import {
  CloseCode,
  handleProtocols,
  makeServer,
  MessageType,
  validateMessage,
  type Context,
  type ServerOptions,
  type SubscribeMessage,
  type WebSocket as GqlSocket,
} from "graphql-ws";
import type { IncomingMessage } from "node:http";
import type { WebSocket, WebSocketServer } from "ws";
import type { ExecutionArgs, ExecutionResult, FormattedExecutionResult, GraphQLError } from "graphql";
import type { Logger } from "../logger.ts";
import { resultJson } from "../graphql/shared-results.ts";
import { sendCoalesced } from "./write-coalescing.ts";

/** What graphql-ws hands our hooks as ctx.extra. `request` is there until onConnect has read what it needs. */
export interface WsExtra {
  readonly socket: WebSocket;
  request?: IncomingMessage;
}

type Ctx<E> = Context<Record<string, unknown> | undefined, E>;

/**
 * For a subscribe message, the arguments to execute it with when it is a query or mutation this glue may answer
 * itself (see serveGraphqlWs), errors to refuse it with, or null when graphql-ws is to run it. Called with the
 * operation already counted in ctx.subscriptions, as onSubscribe is.
 */
export type SingleResultArgs<E> = (ctx: Ctx<E>, message: SubscribeMessage) => ExecutionArgs | readonly GraphQLError[] | null;

// The connection's graphql-ws context, on its extra from onConnect on: what the single-result path reads and writes.
const CONTEXT = Symbol("graphql-ws context");

// The operations in flight on a connection, kept as graphql-ws and the single-result path add and delete their ids
// in ctx.subscriptions. Counting its keys per operation cost 1.9% of the server's CPU at 7,500 lifecycle
// messages/s: graphql-ws makes it a null-prototype object, which V8 keeps as a dictionary, and each `for...in` over
// one builds its list of keys. The count sits on the record itself, under a symbol no enumeration sees, so one
// handler serves every connection.
const COUNT = Symbol("operations in flight");
type CountedRecord = Record<string | symbol, unknown> & { [COUNT]: number };
const counting: ProxyHandler<CountedRecord> = {
  set(target, id, value) {
    if (!(id in target)) target[COUNT]++;
    target[id] = value;
    return true;
  },
  deleteProperty(target, id) {
    if (id in target) {
      target[COUNT]--;
      delete target[id];
    }
    return true;
  },
};

function countedOperations(): Record<string, unknown> {
  const record = Object.create(null) as CountedRecord;
  Object.defineProperty(record, COUNT, { value: 0, writable: true, enumerable: false });
  return new Proxy(record, counting);
}

/** How many operations are in flight in a connection's ctx.subscriptions (counted, on a connection served here). */
export function operationsInFlight(subscriptions: Record<string, unknown>): number {
  const counted = (subscriptions as Partial<CountedRecord>)[COUNT];
  if (counted !== undefined) return counted;
  let n = 0;
  for (const _ in subscriptions) n++;
  return n;
}
type Linked<E> = { [CONTEXT]?: Ctx<E> };

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

/** Runs a subscribe message's query or mutation in place of graphql-ws, or answers null to leave it to graphql-ws. */
type Direct = (extra: Linked<WsExtra>, message: unknown) => Promise<void> | null;

class Adapter implements GqlSocket {
  constructor(
    private readonly socket: WebSocket,
    private readonly extra: Linked<WsExtra>,
    private readonly direct: Direct | null,
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
    const { socket, extra, direct, onError } = this;
    // Not an async listener: the promise of a subscribe message stays pending as long as the subscription runs,
    // and the listener's frame (the raw message) with it.
    socket.on("message", (event) => {
      const text = String(event);
      let handled: Promise<void> | null = null;
      if (direct) {
        let message: unknown;
        try {
          message = JSON.parse(text);
        } catch {
          // graphql-ws closes the socket for it, as for any message it cannot parse.
        }
        // graphql-ws's parseMessage takes an already parsed message as it is, so it is not parsed twice.
        handled = message === undefined ? null : (direct(extra, message) ?? cb(message as string));
      }
      void (handled ?? cb(text)).catch((err) => onError(socket, err));
    });
  }
}

/**
 * The single-result path: a query or mutation that `argsOf` accepts is executed and answered with its next and
 * complete messages here, instead of through graphql-ws's message handler, whose run for one operation (an async
 * function holding every case's state, an emit object of three async closures, an await on each hook, each message
 * built and validated before it is stringified) allocated ~14% of what the server allocated in the 1:1 lifecycle
 * benchmark, where each message takes three or more such operations. What the client sees is what graphql-ws sends:
 * the same refusals (left to graphql-ws: a message that does not validate, one before the connection is acknowledged,
 * an id in use), the operation counted in ctx.subscriptions while it runs, no next once the client completed it,
 * errors as an error message, onNext's hook on the result.
 */
function singleResultPath<E extends WsExtra>(
  argsOf: SingleResultArgs<E>,
  options: ServerOptions<Record<string, unknown> | undefined, E>,
  send: (socket: WebSocket, data: string) => Promise<void>,
): Direct {
  const execute = options.execute as (args: ExecutionArgs) => ExecutionResult | Promise<ExecutionResult>;
  return (linked, message) => {
    const ctx = linked[CONTEXT] as Ctx<E> | undefined;
    if (!ctx?.acknowledged || (message as { type?: unknown } | null)?.type !== MessageType.Subscribe) return null;
    try {
      validateMessage(message);
    } catch {
      return null;
    }
    const subscribe = message as SubscribeMessage;
    const { id, payload } = subscribe;
    if (id in ctx.subscriptions) return null;
    ctx.subscriptions[id] = null;
    let args: ExecutionArgs | readonly GraphQLError[] | null = null;
    try {
      args = argsOf(ctx, subscribe);
    } finally {
      if (!args) delete ctx.subscriptions[id];
    }
    if (!args) return null;
    return answer(ctx, id, payload, args);
  };

  async function answer(ctx: Ctx<E>, id: string, payload: SubscribeMessage["payload"], args: ExecutionArgs | readonly GraphQLError[]) {
    const socket = ctx.extra.socket;
    try {
      if (isErrors(args)) {
        const replaced = await options.onError?.(ctx, id, payload, args);
        return await send(socket, frame(id, MessageType.Error, JSON.stringify(replaced ?? args.map((e) => e.toJSON()))));
      }
      const result = await execute(args);
      if (!(id in ctx.subscriptions)) return;
      const replaced = await options.onNext?.(ctx, id, payload, args, result);
      await send(socket, frame(id, MessageType.Next, resultJson(replaced ?? result)));
      await options.onComplete?.(ctx, id, payload);
      if (id in ctx.subscriptions) await send(socket, frame(id, MessageType.Complete));
    } finally {
      delete ctx.subscriptions[id];
    }
  }
}

const isErrors = (args: ExecutionArgs | readonly GraphQLError[]): args is readonly GraphQLError[] => Array.isArray(args);

/** A message as graphql-ws stringifies it: id, type, then the payload's JSON when there is one. */
const frame = (id: string, type: MessageType, payload?: string) =>
  `{"id":${JSON.stringify(id)},"type":"${type}"${payload === undefined ? "" : `,"payload":${payload}`}}`;

/**
 * Serves graphql-ws on `wss`. Sockets that have not answered the previous ping when the next one is due (every
 * `keepAliveMs`) are terminated, as graphql-ws/use/ws does per socket; sockets that sent no connection_init within
 * `connectionInitWaitTimeout` are closed with 4408, as graphql-ws does. Returns a stop function for the timers.
 */
export function serveGraphqlWs<E extends WsExtra>(
  options: ServerOptions<Record<string, unknown> | undefined, E>,
  wss: WebSocketServer,
  logger: Logger,
  { keepAliveMs = 12_000, singleResult }: { keepAliveMs?: number; singleResult?: SingleResultArgs<E> } = {},
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
      // Before the acknowledgement, so before any operation: graphql-ws accepts none until then.
      (ctx as { subscriptions: Record<string, unknown> }).subscriptions = countedOperations();
      (ctx.extra as Linked<E>)[CONTEXT] = ctx;
      return options.onConnect?.(ctx);
    },
    onNext: (ctx, id, payload, args, result) => {
      const replaced = options.onNext?.(ctx, id, payload, args, result);
      if (replaced instanceof Promise) return replaced.then((r) => payloadOf(r ?? result));
      return payloadOf(replaced ?? result);
    },
  });
  wss.options.handleProtocols = handleProtocols;
  // Only with hooks the single-result path honours: graphql-ws's onOperation would be skipped.
  const direct = singleResult && options.execute && !options.onOperation ? singleResultPath(singleResult, options, sendCoalesced) : null;
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
    const extra = { socket, request } as E;
    const closed = server.opened(new Adapter(socket, extra as Linked<WsExtra>, direct, fail), extra);
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
