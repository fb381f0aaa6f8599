// Known queries and mutations over graphql-ws skip envelop's execute phase (src/graphql/ws-execute.ts), so what that
// phase's plugins did must hold here: rate limits charged before anything runs (a refusal is the whole result), errors
// masked (codes kept, unexpected ones hidden) and counted, each operation reported once with its kind, name and time.
// Real graphql-js and graphql-jit on a small schema, both executors.
import {
  GraphQLError,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type DocumentNode,
  type ExecutionResult,
} from "graphql";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.ts";
import { createErrorMasker } from "../../src/graphql/error-masking.ts";
import { createWsExecute, type ExecutedOperation, type OperationRules } from "../../src/graphql/ws-execute.ts";
import { createLogger } from "../../src/logger.ts";

function setup(jit: boolean, charge?: OperationRules["charge"]) {
  const log = { ran: [] as string[], codes: [] as string[], executed: [] as ExecutedOperation[] };
  const field = (name: string, resolve: (args: { how?: string | null }) => unknown) => ({
    type: GraphQLString,
    args: { how: { type: GraphQLString } },
    resolve: (_root: unknown, args: { how?: string | null }) => {
      log.ran.push(name);
      return resolve(args);
    },
  });
  const outcome = async ({ how }: { how?: string | null }) => {
    await new Promise((r) => setTimeout(r, 5));
    if (how === "app") throw new AppError("NOT_FOUND", "no such thing");
    if (how === "unexpected") throw new Error("secret internals at /srv/db");
    return "done";
  };
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { hello: field("hello", () => "world") } }),
    mutation: new GraphQLObjectType({ name: "Mutation", fields: { act: field("act", outcome) } }),
  });
  const execute = createWsExecute(
    {
      charge,
      maskError: createErrorMasker(createLogger("silent")),
      countErrors: (errors) => log.codes.push(...errors.map((e) => String(e.extensions.code))),
      executed: (op) => log.executed.push(op),
    },
    jit,
  );
  const run = (source: string | DocumentNode, variableValues?: Record<string, unknown>, operationName?: string) => {
    const document = typeof source === "string" ? parse(source) : source;
    return Promise.resolve(execute({ schema, document, variableValues, operationName, contextValue: {} }));
  };
  return { log, run };
}

const codes = (r: ExecutionResult) => r.errors?.map((e) => [e.message, e.extensions.code]);

describe.each([true, false])("graphql-ws known operations (jit %s)", (jit) => {
  it("runs a query and a mutation and reports each once with its kind, name and time", async () => {
    const { log, run } = setup(jit);
    expect(await run("query Q { hello }")).toEqual({ data: { hello: "world" } });
    expect(await run("mutation M($how: String) { act(how: $how) }", { how: "ok" })).toEqual({ data: { act: "done" } });
    expect(log.executed.map((o) => [o.operation?.operation, o.operationName])).toEqual([["query", "Q"], ["mutation", "M"]]);
    // The mutation's resolver waited 5 ms: the time is the operation's, not the call's synchronous part.
    expect(log.executed[1].seconds).toBeGreaterThanOrEqual(0.004);
    expect(log.codes).toEqual([]);
  });

  it("masks a resolver's errors (codes kept, internals hidden), counts them, and reports the unmasked result", async () => {
    const { log, run } = setup(jit);
    const app = await run('mutation { act(how: "app") }');
    expect(app.data).toEqual({ act: null });
    expect(codes(app)).toEqual([["no such thing", "NOT_FOUND"]]);
    const unexpected = await run('mutation { act(how: "unexpected") }');
    expect(codes(unexpected)).toEqual([["Unexpected error.", "INTERNAL_SERVER_ERROR"]]);
    expect(JSON.stringify(unexpected)).not.toContain("secret");
    expect(log.codes).toEqual(["NOT_FOUND", "INTERNAL_SERVER_ERROR"]);
    // Reported with the anonymous operation's name and the error's path, for the error counter's labels.
    expect(log.executed.map((o) => [o.operationName, o.result.errors?.[0].path])).toEqual([
      ["Anonymous", ["act"]],
      ["Anonymous", ["act"]],
    ]);
  });

  it("answers bad variables and an unknown operation name as errors with a code, running nothing", async () => {
    const { log, run } = setup(jit);
    const bad = await run("mutation M($how: String) { act(how: $how) }", { how: { not: "a string" } });
    expect(bad.errors?.[0].extensions.code).toBe("BAD_USER_INPUT");
    const unknown = await run("query Q { hello }", {}, "Nope");
    expect(unknown.errors?.[0].extensions.code).toBe("BAD_USER_INPUT");
    expect(log.ran).toEqual([]);
  });

  it("answers a rate-limit refusal as the whole result, before any resolver runs, and reports it", async () => {
    const refusal = { errors: [new GraphQLError("slow down", { extensions: { code: "RATE_LIMITED" } })] };
    const { log, run } = setup(jit, async () => refusal);
    expect(codes(await run('mutation M { act(how: "ok") }'))).toEqual([["slow down", "RATE_LIMITED"]]);
    expect(log.ran).toEqual([]);
    expect(log.codes).toEqual(["RATE_LIMITED"]);
    expect(log.executed.map((o) => o.operationName)).toEqual(["M"]);
  });

  it("answers a rate limiter that cannot be reached as a masked error, running nothing", async () => {
    const { log, run } = setup(jit, () => Promise.reject(new Error("redis at 10.0.0.7:6379 refused")));
    const r = await run('mutation { act(how: "ok") }');
    expect(codes(r)).toEqual([["Unexpected error.", "INTERNAL_SERVER_ERROR"]]);
    expect(JSON.stringify(r)).not.toContain("10.0.0.7");
    expect(log.ran).toEqual([]);
  });

  it("runs one document (a persisted one is one object) again with other variables and another operation", async () => {
    const { run } = setup(jit);
    const document = parse('mutation M($how: String) { act(how: $how) } query Q { hello }');
    expect(await run(document, { how: "ok" }, "M")).toEqual({ data: { act: "done" } });
    expect(codes(await run(document, { how: "app" }, "M"))).toEqual([["no such thing", "NOT_FOUND"]]);
    expect(await run(document, {}, "Q")).toEqual({ data: { hello: "world" } });
    expect(await run(document, { how: "ok" }, "M")).toEqual({ data: { act: "done" } });
  });
});
