// The single-result path of our graphql-ws glue (src/http/graphql-ws.ts): queries and mutations it is handed are
// answered without graphql-ws's message handler, and a client must not be able to tell. Each test runs the same
// operation both ways on one real ws server with graphql-ws behind it (a small schema, real graphql-js) and compares
// the raw frames; the protocol's refusals (before the acknowledgement, an id in use, a message that does not validate)
// stay graphql-ws's own.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  execute,
  GraphQLError,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type ExecutionArgs,
} from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { operationsInFlight, serveGraphqlWs, type WsExtra } from "../../src/http/graphql-ws.ts";
import { createLogger } from "../../src/logger.ts";

let release: () => void = () => {};
const gate = () => new Promise<void>((resolve) => (release = resolve));
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { hello: { type: GraphQLString, resolve: () => "world" } } }),
  mutation: new GraphQLObjectType({
    name: "Mutation",
    fields: {
      act: {
        type: GraphQLString,
        args: { how: { type: GraphQLString } },
        resolve: async (_root, { how }: { how?: string }) => {
          if (how === "slow") await gate();
          if (how === "fail") throw new GraphQLError("refused", { extensions: { code: "NOT_FOUND" } });
          return `done ${how ?? ""}`;
        },
      },
    },
  }),
});

// Which path answered, by operation id; what the path saw in ctx.subscriptions when it was asked.
const direct: string[] = [];
const countedWhenAsked: number[] = [];
// What operationsInFlight (the count the server's per-connection limit reads) said at the same moments.
const inFlightWhenAsked: number[] = [];
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer();
  const wss = new WebSocketServer({ server });
  serveGraphqlWs<WsExtra>(
    {
      schema,
      onConnect: () => true,
      execute: (args: ExecutionArgs) => execute(args),
      // graphql-ws's own path for the same documents: it parses and validates them itself.
      onSubscribe: (_ctx, _id, payload) => (payload.extensions?.refuse ? [new GraphQLError("no", { extensions: { code: "LIMIT_EXCEEDED" } })] : undefined),
    },
    wss,
    createLogger("silent"),
    {
      // Messages marked `direct` take the single-result path; the same message unmarked goes through graphql-ws.
      singleResult: (ctx, { id, payload }) => {
        if (!payload.extensions?.direct) return null;
        direct.push(id);
        countedWhenAsked.push(Object.keys(ctx.subscriptions).length);
        inFlightWhenAsked.push(operationsInFlight(ctx.subscriptions));
        if (payload.extensions.refuse) return [new GraphQLError("no", { extensions: { code: "LIMIT_EXCEEDED" } })];
        return { schema, document: parse(payload.query), variableValues: payload.variables, operationName: payload.operationName };
      },
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
const clients: WebSocket[] = [];
afterAll(() => {
  for (const ws of clients) ws.terminate();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Client {
  ws: WebSocket;
  frames: string[];
  send(message: unknown): void;
  /** Resolves when the server has handled everything sent so far (a ping answered after it). */
  sync(): Promise<void>;
  closed: Promise<number>;
}

async function connect(init = true): Promise<Client> {
  const ws = new WebSocket(url, "graphql-transport-ws");
  clients.push(ws);
  const frames: string[] = [];
  const pongs: (() => void)[] = [];
  ws.on("message", (data) => {
    const text = String(data);
    if (JSON.parse(text).type === "pong") return void pongs.shift()?.();
    frames.push(text);
  });
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
  const client: Client = {
    ws,
    frames,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    sync: () =>
      new Promise<void>((resolve) => {
        pongs.push(resolve);
        client.send({ type: "ping" });
      }),
  };
  if (init) {
    client.send({ type: "connection_init" });
    await client.sync();
    expect(frames.shift()).toBe('{"type":"connection_ack"}');
  }
  return client;
}

const subscribe = (id: string, query: string, extensions: Record<string, unknown> = {}, variables?: Record<string, unknown>) => ({
  id,
  type: "subscribe",
  payload: { query, variables, extensions },
});

/** The frames one operation gets, run through graphql-ws (id "g") and through the single-result path (id "d"). */
async function bothWays(query: string, variables?: Record<string, unknown>, extensions: Record<string, unknown> = {}) {
  const c = await connect();
  c.send(subscribe("g", query, extensions, variables));
  c.send(subscribe("d", query, { ...extensions, direct: true }, variables));
  await waitFrames(c, (f) => f.filter((x) => x.includes('"type":"complete"') || x.includes('"type":"error"')).length === 2);
  c.ws.close();
  const of = (id: string) => c.frames.filter((f) => JSON.parse(f).id === id).map((f) => f.replace(`"id":"${id}"`, '"id":"X"'));
  return { graphqlWs: of("g"), single: of("d") };
}

async function waitFrames(c: Client, done: (frames: string[]) => boolean) {
  for (let i = 0; i < 200 && !done(c.frames); i++) await c.sync();
  expect(done(c.frames), c.frames.join("\n")).toBe(true);
}

describe("graphql-ws single-result path", () => {
  it("answers a query, a mutation and a failing mutation with the bytes graphql-ws sends", async () => {
    const query = await bothWays("{ hello }");
    expect(query.single).toEqual(['{"id":"X","type":"next","payload":{"data":{"hello":"world"}}}', '{"id":"X","type":"complete"}']);
    expect(query.single).toEqual(query.graphqlWs);
    const mutation = await bothWays("mutation($how: String) { act(how: $how) }", { how: "now" });
    expect(mutation.single[0]).toContain('"act":"done now"');
    expect(mutation.single).toEqual(mutation.graphqlWs);
    const failing = await bothWays("mutation($how: String) { act(how: $how) }", { how: "fail" });
    expect(failing.single[0]).toContain('"code":"NOT_FOUND"');
    expect(failing.single).toEqual(failing.graphqlWs);
    expect(direct.length).toBeGreaterThanOrEqual(3);
  });

  it("answers a refusal as an error message, as graphql-ws does for onSubscribe's errors, with no complete", async () => {
    const refused = await bothWays("{ hello }", undefined, { refuse: true });
    expect(refused.single).toEqual(['{"id":"X","type":"error","payload":[{"message":"no","extensions":{"code":"LIMIT_EXCEEDED"}}]}']);
    expect(refused.single).toEqual(refused.graphqlWs);
  });

  it("counts the operation while it runs, sends nothing once the client completed it, and frees its id", async () => {
    const c = await connect();
    c.send(subscribe("slow", "mutation { act(how: \"slow\") }", { direct: true }));
    await c.sync();
    expect(countedWhenAsked.at(-1)).toBe(1);
    c.send({ id: "slow", type: "complete" });
    await c.sync();
    release();
    await c.sync();
    await c.sync();
    expect(c.frames).toEqual([]);
    // Freed: the same id runs again.
    c.send(subscribe("slow", "{ hello }", { direct: true }));
    await waitFrames(c, (f) => f.length === 2);
    expect(c.frames[1]).toBe('{"id":"slow","type":"complete"}');
    c.ws.close();
  });

  it("counts the operations in flight on both paths as their ids come and go, as their keys do", async () => {
    const c = await connect();
    c.send(subscribe("slow", 'mutation { act(how: "slow") }')); // graphql-ws's own path
    await c.sync();
    c.send(subscribe("a", "{ hello }", { direct: true }));
    await waitFrames(c, (f) => f.length === 2);
    expect(inFlightWhenAsked.at(-1)).toBe(2);
    release();
    await waitFrames(c, (f) => f.length === 4);
    c.send(subscribe("b", "{ hello }", { direct: true }));
    await waitFrames(c, (f) => f.length === 6);
    expect(inFlightWhenAsked.at(-1)).toBe(1);
    expect(inFlightWhenAsked).toEqual(countedWhenAsked);
    c.ws.close();
  });

  it("leaves an id in use to graphql-ws, which closes the socket with 4409", async () => {
    const c = await connect();
    c.send(subscribe("same", "mutation { act(how: \"slow\") }", { direct: true }));
    c.send(subscribe("same", "{ hello }", { direct: true }));
    expect(await c.closed).toBe(4409);
    release();
  });

  it("leaves a subscribe before the acknowledgement (4401) and one that does not validate (4400) to graphql-ws", async () => {
    const early = await connect(false);
    const before = direct.length;
    early.send(subscribe("1", "{ hello }", { direct: true }));
    expect(await early.closed).toBe(4401);
    const bad = await connect();
    bad.send({ id: "2", type: "subscribe", payload: { query: 42, extensions: { direct: true } } });
    expect(await bad.closed).toBe(4400);
    const unparsable = await connect();
    unparsable.ws.send("{ not json");
    expect(await unparsable.closed).toBe(4400);
    expect(direct.length).toBe(before);
  });
});
