// What the GraphQL layer reports: per-operation timings (@envelop/prometheus), mutations by field, open
// subscriptions, and errors by code.
import { usePrometheus } from "@envelop/prometheus";
import { getOperationAST, type ExecutionResult, type GraphQLError, type OperationDefinitionNode } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Counter, Histogram } from "prom-client";
import type { Metrics } from "./registry.ts";
import { rootFieldName } from "../graphql/ws-subscribe.ts";
import type { ExecutedOperation } from "../graphql/ws-execute.ts";

export function metricsPlugins(metrics: Metrics): Plugin[] {
  return [
    usePrometheus({
      registry: metrics.registry,
      skipIntrospection: true,
      // Not on the subscribe phase: there each metric hooks every event of every subscription (an iterator wrapper
      // per socket and a promise chain per delivered event, ~12% of the server's busy time in a 50-member group's
      // fan-out), and a subscription's "request duration" is its lifetime. Subscriptions are counted by the gauge
      // below, and errors when they start.
      metrics: {
        graphql_envelop_request: ["execute"],
        graphql_envelop_request_duration: ["execute"],
        graphql_envelop_phase_parse: true,
        graphql_envelop_phase_validate: true,
        graphql_envelop_phase_execute: true,
        graphql_envelop_error_result: ["parse", "validate", "context", "execute"],
      },
    }) as Plugin,
    countingPlugin(metrics),
  ];
}

/** The open subscriptions gauge by root field, and errors by code: shared by both subscription paths. */
export function subscriptionCounts(metrics: Metrics) {
  return {
    opened: (field: string) => metrics.subscriptions.inc({ field }),
    closed: (field: string) => metrics.subscriptions.dec({ field }),
    countErrors: (errors: readonly GraphQLError[]) => {
      for (const err of errors) metrics.graphqlErrors.inc({ code: String(err.extensions?.code ?? "INTERNAL_SERVER_ERROR") });
    },
  };
}

/**
 * For operations executed outside envelop (src/graphql/ws-execute.ts): the same series the plugins above keep, so a
 * dashboard reads one set of metrics whichever path ran an operation. Needs metricsPlugins(metrics) made first (it
 * registers the envelop series).
 */
export function operationMetrics(metrics: Metrics) {
  const { registry } = metrics;
  const series = <T>(name: string) => {
    const metric = registry.getSingleMetric(name);
    if (!metric) throw new Error(`${name} is not registered: make metricsPlugins(metrics) first`);
    return metric as T;
  };
  const requests = series<Counter<"operationType" | "operationName">>("graphql_envelop_request");
  const durations = series<Histogram<"operationType" | "operationName">>("graphql_envelop_request_duration");
  const executes = series<Histogram<"operationType" | "operationName">>("graphql_envelop_phase_execute");
  const errorResults = series<Counter<"operationType" | "operationName" | "path" | "phase">>("graphql_envelop_error_result");
  return {
    ...subscriptionCounts(metrics),
    executed({ operation, operationName, seconds, result }: ExecutedOperation) {
      // In envelop's key order: prom-client keys a series by its labels as given, and the two paths must share one.
      const labels = { operationName, operationType: operation?.operation ?? "unknown" };
      requests.inc(labels);
      durations.observe(labels, seconds);
      executes.observe(labels, seconds);
      for (const error of result.errors ?? []) {
        errorResults.inc({ ...labels, phase: "execute", ...(error.path ? { path: error.path.join(".") } : {}) });
      }
      countMutations(metrics, operation);
    },
  };
}

function countMutations(metrics: Metrics, op: OperationDefinitionNode | null | undefined) {
  if (op?.operation !== "mutation") return;
  for (const s of op.selectionSet.selections) if (s.kind === "Field") metrics.mutations.inc({ field: s.name.value });
}

function countingPlugin(metrics: Metrics): Plugin {
  const counts = subscriptionCounts(metrics);
  const countErrors = (result: ExecutionResult) => counts.countErrors(result.errors ?? []);
  return {
    onExecute({ args }) {
      countMutations(metrics, getOperationAST(args.document, args.operationName));
      return {
        onExecuteDone({ result }) {
          if ("errors" in result) countErrors(result as ExecutionResult);
        },
      };
    },
    // Subscriptions over HTTP (graphql-ws ones are counted by src/graphql/ws-subscribe.ts).
    onSubscribe({ args }) {
      const field = rootFieldName(args);
      counts.opened(field);
      let open = true;
      const close = () => {
        if (open) counts.closed(field);
        open = false;
      };
      return {
        onSubscribeError({ error }) {
          counts.countErrors([error as GraphQLError]);
          close();
        },
        onSubscribeResult({ result }) {
          if (!(Symbol.asyncIterator in result)) {
            countErrors(result as ExecutionResult);
            close();
            return;
          }
          return { onEnd: close };
        },
      };
    },
  };
}
