// What the GraphQL layer reports: per-operation timings (@envelop/prometheus), mutations by field, open
// subscriptions, and errors by code.
import { usePrometheus } from "@envelop/prometheus";
import { getOperationAST, type ExecutionResult, type GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Metrics } from "./registry.ts";

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

function countingPlugin(metrics: Metrics): Plugin {
  const countErrors = (result: ExecutionResult) => {
    for (const err of result.errors ?? []) {
      metrics.graphqlErrors.inc({ code: String((err as GraphQLError).extensions?.code ?? "INTERNAL_SERVER_ERROR") });
    }
  };
  return {
    onExecute({ args }) {
      const op = getOperationAST(args.document, args.operationName);
      if (op?.operation === "mutation") {
        for (const s of op.selectionSet.selections) if (s.kind === "Field") metrics.mutations.inc({ field: s.name.value });
      }
      return {
        onExecuteDone({ result }) {
          if ("errors" in result) countErrors(result as ExecutionResult);
        },
      };
    },
    onSubscribe({ args }) {
      const op = getOperationAST(args.document, args.operationName);
      const first = op?.selectionSet.selections[0];
      const field = first?.kind === "Field" ? first.name.value : "unknown";
      metrics.subscriptions.inc({ field });
      let open = true;
      const close = () => {
        if (open) metrics.subscriptions.dec({ field });
        open = false;
      };
      return {
        onSubscribeError({ error }) {
          metrics.graphqlErrors.inc({ code: String((error as GraphQLError).extensions?.code ?? "INTERNAL_SERVER_ERROR") });
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
