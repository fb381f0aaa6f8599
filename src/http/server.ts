// One HTTP server for everything: POST/GET /graphql (Yoga, GraphiQL on GET), graphql-ws on the same path,
// /healthz and /readyz. graphql-ws runs through Yoga's envelop (cached parse and validate, the same plugins and
// error masking as HTTP), which measured 4x faster than plain useServer; its subscriptions skip envelop's subscribe
// phase (src/graphql/ws-subscribe.ts does that phase's work once, not per subscription), and operations naming a
// known document by hash (the SDK's) skip envelop altogether (src/graphql/ws-execute.ts); their queries and
// mutations are also answered by our graphql-ws glue without graphql-ws's message handler (./graphql-ws.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { getOperationAST, GraphQLError, type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from "graphql";
import type { SubscribePayload } from "graphql-ws";
import type { YogaServerInstance } from "graphql-yoga";
import { WebSocketServer, type WebSocket } from "ws";
import type { Config } from "../config.ts";
import { loggableError, type Logger } from "../logger.ts";
import type { Actor } from "../deps.ts";
import { bearerToken, clientAddress } from "./auth.ts";
import { metricsTokenMatches, writeMetrics } from "../metrics/http.ts";
import type { Registry } from "prom-client";
import type { PersistedOperations } from "../graphql/persisted-operations.ts";
import { operationsInFlight, serveGraphqlWs, type WsExtra as SocketExtra } from "./graphql-ws.ts";
import { Interner } from "./interner.ts";
import { capConnectionsPerIp } from "./ip-cap.ts";
import { CLOSE_SLOW_CONSUMER, CLOSE_TOO_MANY_CONNECTIONS, CLOSE_UNAVAILABLE, ConnectionRegistry } from "./connections.ts";

/** What HTTP and graphql-ws both hand Yoga before parsing: the authenticated caller and where it calls from. */
export interface ServerContext {
  actor: Actor | null;
  clientIp: string;
  /** WebSocket operations only: see Context.dropSlowConsumer. */
  dropSlowConsumer?: () => void;
}

export interface HttpDeps {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  yoga: YogaServerInstance<ServerContext, any>;
  /** Runs graphql-ws subscriptions (src/graphql/ws-subscribe.ts): Yoga's context, not its subscribe phase. */
  subscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult>;
  /** Runs graphql-ws queries and mutations of known documents (src/graphql/ws-execute.ts), outside envelop. */
  executeKnown(args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult>;
  /** The schema, and the operation context Yoga would build: for known documents, which skip Yoga's pipeline. */
  schema: GraphQLSchema;
  contextFor(initial: ServerContext): unknown;
  authenticate(token: string | null): Promise<Actor | null>;
  ready(): Promise<void>;
  logger: Logger;
  maxRequestBytes: number;
  trustProxy: boolean;
  ws: Config["ws"];
  /** Documents known by hash: graphql-ws subscribe messages may name one instead of sending its text. */
  persisted?: PersistedOperations;
  /** Serves everything under /attachments/ (tus uploads, downloads); it authenticates on its own. */
  attachments?: (req: IncomingMessage, res: ServerResponse) => void;
  /** /metrics on this port, for callers presenting this bearer token (otherwise the path does not exist). */
  metrics?: { registry: Registry; token: string };
  /** Told of every authenticated WebSocket accepted and closed (presence). Must not throw. */
  onConnected?(actor: Actor): void;
  onDisconnected?(actor: Actor): void;
}

export interface RunningHttp {
  server: Server;
  connections: ConnectionRegistry;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), then closes every socket. */
  shutdown(graceMs: number): Promise<void>;
}

// context: the one context of the connection's known operations (see knownArgs).
type WsExtra = SocketExtra & { actor?: Actor; clientIp?: string; context?: unknown };

export function startHttp(deps: HttpDeps, port: number, host: string): Promise<RunningHttp> {
  const { yoga, logger } = deps;
  const connections = new ConnectionRegistry();
  const queryTexts = new Interner(256, 16 * 1024);

  // Set by shutdown: requests still arriving on kept-alive sockets are refused (retryable) and their sockets closed,
  // so the node only finishes what it had already started and no response is cut off half-way.
  let draining = false;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (draining) {
      res.setHeader("connection", "close");
      return sendJson(res, 503, {
        errors: [{ message: "server shutting down, retry", extensions: { code: "UNAVAILABLE" } }],
      });
    }
    if (path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (path === "/metrics" && deps.metrics) {
      if (metricsTokenMatches(req, deps.metrics.token)) return void writeMetrics(deps.metrics.registry, res);
      return sendJson(res, 401, { errors: [{ message: "metrics need their bearer token", extensions: { code: "UNAUTHENTICATED" } }] });
    }
    if (path === "/readyz") {
      deps.ready().then(
        () => sendJson(res, 200, { status: "ready" }),
        (err: Error) => {
          // The raw error can name hosts, users and driver internals: it goes to the log, the caller gets a word.
          logger.warn({ err: loggableError(err) }, "not ready");
          sendJson(res, 503, { status: "unavailable", reason: "a backing service is unreachable" });
        },
      );
      return;
    }
    if (deps.attachments && (path === "/attachments" || path.startsWith("/attachments/"))) return deps.attachments(req, res);
    if (!withinBodyLimit(req, res, deps.maxRequestBytes)) return;
    // Authenticated before Yoga parses, so validation (field suggestions) already knows who is calling.
    const clientIp = clientAddress(req, deps.trustProxy);
    deps.authenticate(bearerToken(req.headers.authorization)).then(
      (actor) => yoga(req, res, { actor, clientIp }),
      (err: Error) => {
        logger.warn({ err: err.message }, "authentication failed: store unavailable");
        sendJson(res, 503, { errors: [{ message: "service unavailable, retry", extensions: { code: "UNAVAILABLE" } }] });
      },
    );
  });

  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: deps.maxRequestBytes });
  capConnectionsPerIp(wss, deps.ws.maxConnectionsPerIp, (req) => clientAddress(req, deps.trustProxy));
  // What graphql-ws's execute hook calls for a known document (see onSubscribe).
  const knownRoot: Enveloped = { execute: deps.executeKnown as Enveloped["execute"] };
  const stopKeepAlive = serveGraphqlWs<WsExtra>(
    {
      // A socket that has not authenticated by then is closed with 4408.
      connectionInitWaitTimeout: deps.ws.authTimeoutMs,
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        const token = bearerToken(ctx.connectionParams?.authorization);
        // Read once: the bearer token need not stay in memory for the connection's lifetime.
        (ctx as { connectionParams?: unknown }).connectionParams = undefined;
        let actor: Actor | null;
        try {
          actor = await deps.authenticate(token);
        } catch (err) {
          logger.warn({ err: (err as Error).message }, "websocket authentication failed: store unavailable");
          socket.close(CLOSE_UNAVAILABLE, "service unavailable, retry");
          return false;
        }
        if (!actor) return false; // graphql-ws closes with 4403 Forbidden
        // Per node: a device spreading sockets over several nodes gets this many on each.
        if (connections.count(actor) >= deps.ws.maxConnectionsPerDevice) {
          socket.close(CLOSE_TOO_MANY_CONNECTIONS, "too many connections for this device");
          return false;
        }
        ctx.extra.actor = actor;
        ctx.extra.clientIp = clientAddress(ctx.extra.request!, deps.trustProxy);
        // The upgrade request (headers, parser state) is not needed past this point and would stay for the
        // connection's lifetime: what later operations need from it is in actor and clientIp.
        ctx.extra.request = undefined;
        connections.add(actor, socket);
        deps.onConnected?.(actor);
        return true;
      },
      onClose: (ctx) => {
        if (!ctx.extra.actor) return;
        connections.remove(ctx.extra.actor, ctx.extra.socket);
        deps.onDisconnected?.(ctx.extra.actor);
      },
      execute: (args: ExecutionArgs) => (args.rootValue as Enveloped).execute(args),
      // A subscription's own backlog is bounded where it is produced (services/feed.ts ends a subscriber that falls
      // too far behind); what is bounded here is what sits unsent in the socket.
      // The root value carries the enveloped execute; a subscription's resolvers have no use for it.
      subscribe: (args: ExecutionArgs) => deps.subscribe({ ...args, rootValue: undefined }),
      onSubscribe: async (ctx, _id, params) => {
        const refused = overLimit(ctx.subscriptions);
        if (refused) return refused;
        // A document the server knows by hash (the SDK's) was parsed and validated at start: it runs outside Yoga's
        // pipeline, with the context Yoga would have built.
        const known = deps.persisted?.knownDocument(params);
        if (known) return knownArgs(ctx.extra, params, known);
        const serverContext = serverContextOf(ctx.extra);
        // graphql-ws keeps the subscribe message for the operation's life; devices send the same few documents, so
        // they share one copy of each text instead of holding their own.
        (params as { query: string }).query = queryTexts.intern(params.query);
        const { schema, execute, contextFactory, parse, validate } = yoga.getEnveloped(serverContext);
        // A known document (by hash) parses to the one parsed and validated at start, and skips validation.
        const persisted = deps.persisted?.forSubscribe(params) ?? null;
        if (persisted instanceof GraphQLError) return [persisted];
        let document;
        try {
          document = parse(persisted ?? params.query);
        } catch (err) {
          return [err as never];
        }
        let errors;
        try {
          errors = validate(schema, document);
        } catch (err) {
          return [err as never]; // armor's limits throw their refusal from inside validation
        }
        if (errors.length > 0) return errors;
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute },
        };
      },
      onNext: (ctx) => {
        if (ctx.extra.socket.bufferedAmount > deps.ws.maxBufferedBytes) dropSlowConsumer(ctx.extra.socket);
      },
    },
    wss,
    logger,
    {
      // Queries and mutations of known documents (every SDK call) are answered by the glue itself (graphql-ws.ts);
      // subscriptions and text documents go through graphql-ws and onSubscribe above.
      singleResult: (ctx, { payload }) => {
        const known = deps.persisted?.knownDocument(payload);
        if (!known || getOperationAST(known, payload.operationName)?.operation === "subscription") return null;
        return overLimit(ctx.subscriptions) ?? knownArgs(ctx.extra, payload, known);
      },
    },
  );

  // ctx.subscriptions already holds the operation asking; queries and mutations in flight count too.
  function overLimit(operations: Record<string, unknown>): GraphQLError[] | null {
    if (operationsInFlight(operations) <= deps.ws.maxOperationsPerConnection) return null;
    return [
      new GraphQLError(`at most ${deps.ws.maxOperationsPerConnection} operations per connection`, {
        extensions: { code: "LIMIT_EXCEEDED" },
      }),
    ];
  }

  // Only what our plugins and resolvers read: the context lives as long as the operation (a subscription: the whole
  // connection), so the graphql-ws context, socket and request are not copied into it.
  function serverContextOf(extra: WsExtra): ServerContext {
    return {
      actor: extra.actor ?? null,
      clientIp: extra.clientIp ?? "",
      // Bound, not an arrow: under tsx's keepNames a named closure per connection carries its own property table.
      dropSlowConsumer: dropSlowConsumer.bind(null, extra.socket),
    };
  }

  function knownArgs(extra: WsExtra, params: SubscribePayload, document: DocumentNode): ExecutionArgs {
    return {
      schema: deps.schema,
      operationName: params.operationName,
      document,
      variableValues: params.variables,
      // One per connection, made on its first known operation: everything in it (the actor, the address, the
      // services) is the connection's, and what the resolvers' scope checks cache on it (@pothos/plugin-scope-auth's
      // request cache, five Maps) holds for the connection too. A fresh one per operation was about a quarter of the
      // bytes that survived a young collection at 5,000 lifecycle messages/s (BENCHMARKS Round 18); the inbox
      // subscription keeps this one for the connection's life anyway.
      contextValue: (extra.context ??= deps.contextFor(serverContextOf(extra))),
      rootValue: knownRoot,
    };
  }

  function dropSlowConsumer(socket: WebSocket) {
    if (socket.readyState !== socket.OPEN) return;
    logger.warn({ buffered: socket.bufferedAmount }, "dropping a slow websocket consumer");
    socket.close(CLOSE_SLOW_CONSUMER, "slow consumer");
    // The close frame waits behind the unsent data the client is not reading: do not wait for it.
    setTimeout(() => socket.terminate(), 1_000).unref();
  }

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({
        server,
        connections,
        async shutdown(graceMs) {
          draining = true;
          const closed = new Promise<void>((done) => server.close(() => done()));
          server.closeIdleConnections();
          wss.close();
          stopKeepAlive();
          const timer = setTimeout(() => server.closeAllConnections(), graceMs);
          // WebSocket clients reconnect elsewhere; what they had in flight is in their queues.
          for (const socket of wss.clients) socket.close(1001, "server shutting down");
          await closed;
          clearTimeout(timer);
          logger.info("http server closed");
        },
      });
    });
  });
}

type Enveloped = {
  execute(args: ExecutionArgs): never;
};

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Refuses bodies over the limit before Yoga buffers them. */
function withinBodyLimit(req: IncomingMessage, res: ServerResponse, max: number): boolean {
  if (req.method !== "POST") return true;
  const length = Number(req.headers["content-length"]);
  if (!req.headers["content-length"] || !Number.isFinite(length)) {
    sendJson(res, 411, { errors: [{ message: "Content-Length is required", extensions: { code: "BAD_REQUEST" } }] });
    return false;
  }
  if (length > max) {
    sendJson(res, 413, {
      errors: [{ message: `request body over ${max} bytes`, extensions: { code: "PAYLOAD_TOO_LARGE" } }],
    });
    return false;
  }
  return true;
}

export type { WebSocket };
