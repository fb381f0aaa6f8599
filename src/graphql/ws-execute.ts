// Queries and mutations over graphql-ws, for known (persisted) documents, run without envelop's execute phase. Each
// 1:1 message costs three to five such operations (send, acknowledgements, receipts), and envelop's pipeline for one
// (every plugin's onExecute hook object, the promise helpers chaining them, the result wrapped for each onExecuteDone)
// allocated ~22% of what the server allocated in the lifecycle benchmark. What those plugins do on the execute phase is
// done here, once per operation: rate limits charged before anything runs, the compiled executor, errors masked and
// counted, the operation timings observed. Known documents were parsed and validated at start (persisted-operations.ts);
// any other document, and everything over HTTP, keeps Yoga's pipeline.
import { getOperationAST, type ExecutionArgs, type ExecutionResult, type GraphQLError, type OperationDefinitionNode } from "graphql";
import { compiledRunners } from "./compiled.ts";
import { resultMasker } from "./error-masking.ts";
import type { SubscriptionRules } from "./ws-subscribe.ts";

/** What an operation's execution reports: the operation, its name, seconds from start to result, and that result. */
export interface ExecutedOperation {
  operation: OperationDefinitionNode | null;
  operationName: string;
  seconds: number;
  result: ExecutionResult;
}

/**
 * What the execute phase of the HTTP path's plugins is, for operations that do not run through it: the charge (every
 * root field; a refusal is the whole result), masking and error counts as for subscriptions, and the timings.
 */
export interface OperationRules extends Pick<SubscriptionRules, "charge" | "maskError" | "countErrors"> {
  /** The timings and counters the HTTP path's metrics plugins keep (the result's errors unmasked, for their paths). */
  executed(operation: ExecutedOperation): void;
}

export function createWsExecute(rules: OperationRules, jit: boolean) {
  const runnerOf = compiledRunners(jit);
  const masked = resultMasker(rules);
  const finish = (args: ExecutionArgs, started: number, result: ExecutionResult): ExecutionResult => {
    const op = getOperationAST(args.document, args.operationName);
    rules.executed({
      operation: op ?? null,
      // As @envelop/prometheus names it, so both paths share a series.
      operationName: args.operationName || op?.name?.value || "Anonymous",
      seconds: (performance.now() - started) / 1000,
      result,
    });
    return masked(result);
  };
  const run = (args: ExecutionArgs, started: number): ExecutionResult | Promise<ExecutionResult> => {
    let result;
    try {
      result = runnerOf(args)(args.rootValue, args.contextValue, args.variableValues);
    } catch (err) {
      result = { errors: [err as GraphQLError] };
    }
    if (!(result instanceof Promise)) return finish(args, started, result);
    return result.then(
      (r) => finish(args, started, r),
      (err) => finish(args, started, { errors: [err as GraphQLError] }),
    );
  };

  return function executeKnown(args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult> {
    const started = performance.now();
    const charging = rules.charge?.(args);
    if (!charging) return run(args, started);
    return charging.then(
      (refused) => (refused ? finish(args, started, refused) : run(args, started)),
      // The limiter's store is away: masked like any failure (UNAVAILABLE when it is the database or the bus).
      (err) => finish(args, started, { errors: [err as GraphQLError] }),
    );
  };
}
