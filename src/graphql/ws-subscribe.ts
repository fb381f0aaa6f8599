// Subscriptions over graphql-ws, run without envelop's subscribe phase. Every connected device holds one or two
// subscriptions for its whole connection, and envelop gives each a chain of its own: the plugins' per-subscription
// hook objects, an iterator wrapper per hook kind (masking, metrics, error rethrow) and the compiled executor's own,
// each with closures and a pending promise, ~3.5 KiB per held subscription and three promise hops per delivered
// event. Here a subscription is one EventResults object over the source stream, and what those plugins did on the
// subscribe phase is done once, below: rate limits charged when it starts, errors masked and counted, the open
// subscriptions gauge kept. A document sent as text is still parsed, validated and given its context by Yoga in
// graphql-ws's onSubscribe; a known one (by hash) was parsed and validated at start (src/http/server.ts). HTTP
// subscriptions keep envelop's path; queries and mutations of known documents run in ws-execute.ts.
import { createSourceEventStream, getOperationAST, type ExecutionArgs, type ExecutionResult, type GraphQLError } from "graphql";
import { compiledRunners, type Run } from "./compiled.ts";
import { MASKED_MESSAGE, resultMasker } from "./error-masking.ts";
import { eventRunner } from "./shared-results.ts";

/** What the subscribe phase of the HTTP path's plugins is, for subscriptions that do not run through it. */
export interface SubscriptionRules {
  /** Charges the subscription's start to the rate limits; a refusal (its errors) is the subscription's whole result. */
  charge?(args: ExecutionArgs): Promise<ExecutionResult | undefined> | undefined;
  /** Yoga's error masking: what a client may see of an error. */
  maskError(error: unknown, message: string): GraphQLError;
  /** The open subscriptions gauge, by root field, and the errors results carry. */
  opened(field: string): void;
  closed(field: string): void;
  countErrors(errors: readonly GraphQLError[]): void;
}

/**
 * The subscribe function for graphql-ws: the source stream from the field's subscribe resolver, then each event
 * executed with the operation's selection (compiled by graphql-jit when `jit`, once per document; an event every
 * subscriber sees alike, once for all of them: shared-results.ts).
 */
export function createWsSubscribe(rules: SubscriptionRules, jit: boolean) {
  const runnerOf = compiledRunners(jit);
  const masked = resultMasker(rules);

  return async function subscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const refused = await rules.charge?.(args);
    if (refused) return masked(refused);
    let source: AsyncIterable<unknown> | ExecutionResult;
    try {
      source = await createSourceEventStream(args);
    } catch (err) {
      return masked({ errors: [err as GraphQLError] });
    }
    if (!(Symbol.asyncIterator in source)) return masked(source);
    const field = rootFieldName(args);
    rules.opened(field);
    const run = eventRunner(runnerOf(args), args.schema, field, args.variableValues);
    return new EventResults(source[Symbol.asyncIterator](), run, args.contextValue, args.variableValues, field, rules, masked);
  };
}

/** The operation's first root field: what the subscriptions gauge is labelled by, on both paths. */
export function rootFieldName(args: Pick<ExecutionArgs, "document" | "operationName">): string {
  const first = getOperationAST(args.document, args.operationName)?.selectionSet.selections[0];
  return first?.kind === "Field" ? first.name.value : "unknown";
}

/** One subscription: the source's events executed and masked, in order; ends (once) with the source or return(). */
class EventResults implements AsyncIterableIterator<ExecutionResult> {
  private open = true;

  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly run: Run,
    private readonly context: unknown,
    private readonly variables: ExecutionArgs["variableValues"],
    private readonly field: string,
    private readonly rules: SubscriptionRules,
    private readonly masked: (r: ExecutionResult) => ExecutionResult,
  ) {}

  // Not an async method: its frame would stay allocated for as long as the subscription waits for an event, which
  // for a connected device's inbox is most of its life.
  next(): Promise<IteratorResult<ExecutionResult>> {
    return this.source.next().then(
      (step) => this.step(step),
      (err) => this.failed(err),
    );
  }

  private async step(step: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> {
    if (step.done) {
      this.end();
      return { value: undefined, done: true };
    }
    try {
      return { value: this.masked(await this.run(step.value, this.context, this.variables)), done: false };
    } catch (err) {
      await this.return();
      return this.failed(err);
    }
  }

  private failed(err: unknown): never {
    this.end();
    // graphql-ws sends it as the operation's error (its code kept) and completes the operation.
    const error = this.rules.maskError(err, MASKED_MESSAGE);
    this.rules.countErrors([error]);
    throw error;
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    await this.source.return?.();
    return { value: undefined, done: true };
  }

  async throw(err: unknown): Promise<IteratorResult<ExecutionResult>> {
    await this.return();
    throw err;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private end(): void {
    if (!this.open) return;
    this.open = false;
    this.rules.closed(this.field);
  }
}
