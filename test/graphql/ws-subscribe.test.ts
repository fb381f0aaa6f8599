// graphql-ws subscriptions skip envelop's subscribe phase (src/graphql/ws-subscribe.ts), so what that phase's plugins
// did must hold here: errors masked (codes kept, unexpected ones hidden) and counted, rate-limit refusals as the whole
// result, the open-subscriptions gauge moved once per subscription however it ends, the source released on return.
// Real graphql-js and graphql-jit on a small schema, both executors.
import { GraphQLError, GraphQLObjectType, GraphQLSchema, GraphQLString, parse, type ExecutionResult } from "graphql";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.ts";
import { createErrorMasker } from "../../src/graphql/error-masking.ts";
import { createWsSubscribe, type SubscriptionRules } from "../../src/graphql/ws-subscribe.ts";
import { Feed } from "../../src/live/feed.ts";
import { createLogger } from "../../src/logger.ts";

type Event = { text: string; explode?: "app" | "unexpected" };

function setup(jit: boolean, charge?: SubscriptionRules["charge"]) {
  const sources: Feed<Event>[] = [];
  const log = { opened: [] as string[], closed: [] as string[], codes: [] as string[] };
  const Event = new GraphQLObjectType({
    name: "Event",
    fields: {
      text: {
        type: GraphQLString,
        resolve: (e: Event) => {
          if (e.explode === "app") throw new AppError("NOT_FOUND", "no such thing");
          if (e.explode === "unexpected") throw new Error("secret internals at /srv/db");
          return e.text;
        },
      },
    },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: "Subscription",
      fields: {
        events: {
          type: Event,
          subscribe: (_root, _args, ctx: { allowed: boolean }) => {
            if (!ctx.allowed) throw new AppError("UNAUTHENTICATED", "sign in first");
            const feed = new Feed<Event>(100);
            sources.push(feed);
            return feed;
          },
          resolve: (e: Event) => e,
        },
      },
    }),
  });
  const subscribe = createWsSubscribe(
    {
      charge,
      maskError: createErrorMasker(createLogger("silent")),
      opened: (f) => log.opened.push(f),
      closed: (f) => log.closed.push(f),
      countErrors: (errors) => log.codes.push(...errors.map((e) => String(e.extensions.code))),
    },
    jit,
  );
  const document = parse("subscription S { events { text } }");
  const start = (allowed = true) => subscribe({ schema, document, contextValue: { allowed } });
  return { sources, log, start };
}

const stream = (r: AsyncIterableIterator<ExecutionResult> | ExecutionResult) => {
  if (!(Symbol.asyncIterator in r)) throw new Error(`not a stream: ${JSON.stringify(r)}`);
  return r;
};

describe.each([true, false])("graphql-ws subscriptions (jit %s)", (jit) => {
  it("delivers each event executed, masks a resolver's errors (codes kept, internals hidden) and counts them", async () => {
    const { sources, log, start } = setup(jit);
    const it = stream(await start());
    expect(log.opened).toEqual(["events"]);
    sources[0].push({ text: "hello" });
    sources[0].push({ text: "x", explode: "app" });
    sources[0].push({ text: "y", explode: "unexpected" });
    expect((await it.next()).value).toEqual({ data: { events: { text: "hello" } } });
    const app = (await it.next()).value as ExecutionResult;
    expect(app.data).toEqual({ events: { text: null } });
    expect(app.errors!.map((e) => [e.message, e.extensions.code])).toEqual([["no such thing", "NOT_FOUND"]]);
    const unexpected = (await it.next()).value as ExecutionResult;
    expect(unexpected.errors!.map((e) => [e.message, e.extensions.code])).toEqual([["Unexpected error.", "INTERNAL_SERVER_ERROR"]]);
    expect(JSON.stringify(unexpected)).not.toContain("secret");
    expect(log.codes).toEqual(["NOT_FOUND", "INTERNAL_SERVER_ERROR"]);
    expect(log.closed).toEqual([]);
  });

  it("answers a subscribe resolver's refusal as the result, masked, and never counts it open", async () => {
    const { sources, log, start } = setup(jit);
    const r = (await start(false)) as ExecutionResult;
    expect(Symbol.asyncIterator in r).toBe(false);
    expect(r.errors!.map((e) => [e.message, e.extensions.code])).toEqual([["sign in first", "UNAUTHENTICATED"]]);
    expect(sources).toHaveLength(0);
    expect(log).toMatchObject({ opened: [], closed: [], codes: ["UNAUTHENTICATED"] });
  });

  it("ends with the source's failure as a masked error that keeps its code, closed once", async () => {
    const { sources, log, start } = setup(jit);
    const it = stream(await start());
    sources[0].fail(new AppError("LIMIT_EXCEEDED", "the subscriber fell too far behind"));
    const err = await it.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GraphQLError);
    expect((err as GraphQLError).extensions.code).toBe("LIMIT_EXCEEDED");
    await it.return!();
    expect(log.closed).toEqual(["events"]);
    expect(log.codes).toEqual(["LIMIT_EXCEEDED"]);
  });

  it("releases the source on return (a client's complete, a closed socket), and counts it closed once", async () => {
    const { sources, log, start } = setup(jit);
    const it = stream(await start());
    const pending = it.next();
    await it.return!();
    await it.return!();
    expect(sources[0].closed).toBe(true);
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(log).toMatchObject({ opened: ["events"], closed: ["events"] });
  });

  it("answers a rate-limit refusal as the whole result, before the subscribe resolver runs", async () => {
    const refusal = { errors: [new GraphQLError("slow down", { extensions: { code: "RATE_LIMITED" } })] };
    const { sources, log, start } = setup(jit, async () => refusal);
    const r = (await start()) as ExecutionResult;
    expect(r.errors!.map((e) => e.extensions.code)).toEqual(["RATE_LIMITED"]);
    expect(sources).toHaveLength(0);
    expect(log.opened).toEqual([]);
  });
});
