// An event every subscriber sees alike is executed once per document and serialised once (src/graphql/shared-results.ts).
// What must hold: only a context-free field delivering a context-free type, under one document without variables,
// shares; anything that could differ per subscriber (another type, another field, variables, errors) is executed per
// subscriber. And the real schema's marked field and types read nothing from the context.
import { defaultFieldResolver, GraphQLObjectType, GraphQLSchema, GraphQLString, GraphQLUnionType, parse, type ExecutionResult } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../../src/graphql/index.ts";
import { createErrorMasker } from "../../src/graphql/error-masking.ts";
import { CONTEXT_FREE, resultJson } from "../../src/graphql/shared-results.ts";
import { createWsSubscribe } from "../../src/graphql/ws-subscribe.ts";
import { Feed } from "../../src/live/feed.ts";
import { createLogger } from "../../src/logger.ts";
import { groupEvent } from "../../src/groups/events.ts";

type Event = { __typename: "Broadcast" | "Personal"; text: string; fail?: boolean };
type Ctx = { viewer: string };

function setup(jit: boolean) {
  const feeds: Feed<Event>[] = [];
  const calls = { Broadcast: 0, Personal: 0 };
  const Broadcast = new GraphQLObjectType({
    name: "Broadcast",
    extensions: CONTEXT_FREE,
    fields: {
      text: {
        type: GraphQLString,
        resolve: (e: Event) => {
          calls.Broadcast++;
          if (e.fail) throw new Error("internals");
          return e.text;
        },
      },
    },
  });
  const Personal = new GraphQLObjectType({
    name: "Personal",
    fields: {
      text: {
        type: GraphQLString,
        resolve: (e: Event, _args, ctx: Ctx) => {
          calls.Personal++;
          return `${e.text} for ${ctx.viewer}`;
        },
      },
    },
  });
  const Item = new GraphQLUnionType({ name: "Item", types: [Broadcast, Personal], resolveType: (e: Event) => e.__typename });
  const field = (contextFree: boolean) => ({
    type: Item,
    args: { tag: { type: GraphQLString } },
    extensions: contextFree ? CONTEXT_FREE : undefined,
    subscribe: () => {
      const feed = new Feed<Event>(100);
      feeds.push(feed);
      return feed;
    },
    resolve: (e: Event) => e,
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({ name: "Subscription", fields: { items: field(true), unmarked: field(false) } }),
  });
  const subscribe = createWsSubscribe(
    { maskError: createErrorMasker(createLogger("silent")), opened() {}, closed() {}, countErrors() {} },
    jit,
  );
  const selection = "{ __typename ... on Broadcast { text } ... on Personal { text } }";
  const documents = {
    items: parse(`subscription { items ${selection} }`),
    other: parse(`subscription Other { items ${selection} }`),
    unmarked: parse(`subscription { unmarked ${selection} }`),
    tagged: parse(`subscription T($tag: String) { items(tag: $tag) ${selection} }`),
  };
  /** Subscribes as `viewer`; returns the next-result reader of that subscription. */
  const start = async (viewer: string, doc: keyof typeof documents = "items", variableValues?: Record<string, unknown>) => {
    const r = await subscribe({ schema, document: documents[doc], contextValue: { viewer }, variableValues });
    if (!(Symbol.asyncIterator in r)) throw new Error(JSON.stringify(r));
    return async () => (await r.next()).value as ExecutionResult;
  };
  /** Pushes the same event object to every subscription opened so far. */
  const broadcast = (e: Event) => feeds.forEach((f) => f.push(e));
  return { calls, start, broadcast };
}

describe.each([true, false])("shared subscription results (jit %s)", (jit) => {
  it("executes a context-free event once for every subscriber of the document and serialises it once", async () => {
    const { calls, start, broadcast } = setup(jit);
    const [a, b, c] = [await start("ann"), await start("bob"), await start("cyd")];
    const event: Event = { __typename: "Broadcast", text: "hello" };
    broadcast(event);
    const results = [await a(), await b(), await c()];
    expect(calls.Broadcast).toBe(1);
    expect(results[1]).toBe(results[0]);
    expect(results[2]).toBe(results[0]);
    expect(results[0]).toEqual({ data: { items: { __typename: "Broadcast", text: "hello" } } });
    const json = resultJson(results[0]);
    expect(JSON.parse(json)).toEqual(results[0]);
    expect(resultJson(results[1])).toBe(json); // the same string: not serialised again
    // Another event object with the same content is another event: executed again.
    broadcast({ __typename: "Broadcast", text: "hello" });
    expect(await a()).not.toBe(results[0]);
    await b();
    expect(calls.Broadcast).toBe(2);
  });

  it("executes per subscriber what may differ per subscriber: another type, another field, variables, another document", async () => {
    const { calls, start, broadcast } = setup(jit);
    const ann = await start("ann");
    const bob = await start("bob");
    broadcast({ __typename: "Personal", text: "hi" });
    expect([(await ann()).data, (await bob()).data]).toEqual([
      { items: { __typename: "Personal", text: "hi for ann" } },
      { items: { __typename: "Personal", text: "hi for bob" } },
    ]);
    expect(calls.Personal).toBe(2);

    const s = setup(jit);
    const unmarked = [await s.start("ann", "unmarked"), await s.start("bob", "unmarked")];
    const tagged = [await s.start("cyd", "tagged", { tag: "x" }), await s.start("dan", "tagged", { tag: "x" })];
    s.broadcast({ __typename: "Broadcast", text: "hello" });
    const hello = { __typename: "Broadcast", text: "hello" };
    for (const read of unmarked) expect((await read()).data).toEqual({ unmarked: hello });
    for (const read of tagged) expect((await read()).data).toEqual({ items: hello });
    expect(s.calls.Broadcast).toBe(4);

    const d = setup(jit);
    const one = await d.start("ann", "items");
    const other = await d.start("bob", "other");
    d.broadcast({ __typename: "Broadcast", text: "hello" });
    expect(await one()).not.toBe(await other());
    expect(d.calls.Broadcast).toBe(2);
  });

  it("does not share a result with errors: each subscriber's is masked on its own", async () => {
    const { calls, start, broadcast } = setup(jit);
    const [a, b] = [await start("ann"), await start("bob")];
    broadcast({ __typename: "Broadcast", text: "x", fail: true });
    const [ra, rb] = [await a(), await b()];
    expect(calls.Broadcast).toBe(2);
    expect(ra).not.toBe(rb);
    for (const r of [ra, rb]) expect(r.errors!.map((e) => [e.message, e.extensions.code])).toEqual([["Unexpected error.", "INTERNAL_SERVER_ERROR"]]);
  });
});

describe("the schema's context-free marks", () => {
  // A context that fails on any use: a marked resolver that reads who is asking would throw here.
  const noContext = new Proxy({}, { get: () => { throw new Error("read the context"); }, has: () => { throw new Error("read the context"); } });

  it("are on the inbox subscription and GroupEvent only, and their resolvers read nothing from the context", () => {
    const fields = Object.values(schema.getSubscriptionType()!.getFields()).filter((f) => f.extensions.contextFree);
    const types = Object.values(schema.getTypeMap()).filter((t) => t.extensions?.contextFree);
    expect(fields.map((f) => f.name)).toEqual(["inbox"]);
    expect(types.map((t) => t.name)).toEqual(["GroupEvent"]);
    const event = groupEvent("7b0e1e36-3c4e-4f7a-9f0e-1d2c3b4a5968", 5n, "APPLICATION", 2, "5b0e1e36-3c4e-4f7a-9f0e-1d2c3b4a5968", 1, new Uint8Array([1, 2, 3]), new Date());
    expect(fields[0].resolve!(event, {}, noContext, {} as never)).toBe(event);
    for (const f of Object.values((types[0] as GraphQLObjectType).getFields())) {
      const resolve = f.resolve ?? defaultFieldResolver;
      expect(resolve(event, {}, noContext, { fieldName: f.name } as never), f.name).not.toBeUndefined();
    }
  });
});
