// One executor per document: graphql-jit's compiled query when `jit` (compiled once per document and operation),
// graphql-js's execute otherwise or when jit cannot compile it. Shared by the graphql-ws paths that run outside
// envelop (ws-subscribe.ts for subscription events, ws-execute.ts for known queries and mutations).
import { execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from "graphql";
import { compileQuery, isCompiledQuery } from "graphql-jit";

export type Run = (
  root: unknown,
  context: unknown,
  variables: ExecutionArgs["variableValues"],
) => ExecutionResult | Promise<ExecutionResult>;

/** The runner of an operation: its document and operation name picked out of `args`, the rest given per call. */
export function compiledRunners(jit: boolean): (args: ExecutionArgs) => Run {
  const compiled = new WeakMap<DocumentNode, { operationName: string | null | undefined; run: Run }>();
  return (args) => {
    const known = compiled.get(args.document);
    if (known && known.operationName === args.operationName) return known.run;
    const { schema, document, operationName } = args;
    let run: Run = (rootValue, contextValue, variableValues) =>
      execute({ schema, document, operationName, rootValue, contextValue, variableValues }) as ExecutionResult | Promise<ExecutionResult>;
    if (jit) {
      const query = compileQuery(schema, document, operationName ?? undefined);
      // A document jit cannot compile still runs, through graphql-js (which reports what is wrong with it).
      if (isCompiledQuery(query)) run = (root, context, variables) => query.query(root, context, variables ?? {});
    }
    compiled.set(document, { operationName, run });
    return run;
  };
}
