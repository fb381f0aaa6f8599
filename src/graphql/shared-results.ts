// One event, many subscribers: a group's message reaches every member's inbox subscription on a node as the same event
// object (the bus parses a channel's message once for all its listeners). When the subscription field and the event's
// type read nothing from the context (both marked `contextFree` in the schema) and the subscribers run the same known
// document without variables, every member's result is the same: it is executed once per document and event, and
// serialised once (http/graphql-ws.ts splices the JSON into each socket's message), instead of once per member.
import type { ExecutionResult, FormattedExecutionResult, GraphQLSchema } from "graphql";
import type { Run } from "./compiled.ts";

/** The schema extension that declares a subscription field, or an object type, free of per-subscriber state. */
export const CONTEXT_FREE = { contextFree: true } as const;

interface ContextFree {
  fields: Set<string>;
  types: Set<string>;
}

const marked = (extensions: unknown) => (extensions as { contextFree?: unknown } | undefined)?.contextFree === true;

const bySchema = new WeakMap<GraphQLSchema, ContextFree>();
function contextFree(schema: GraphQLSchema): ContextFree {
  let found = bySchema.get(schema);
  if (found) return found;
  const fields = Object.values(schema.getSubscriptionType()?.getFields() ?? {});
  found = {
    fields: new Set(fields.filter((f) => marked(f.extensions)).map((f) => f.name)),
    types: new Set(Object.values(schema.getTypeMap()).filter((t) => marked(t.extensions)).map((t) => t.name)),
  };
  bySchema.set(schema, found);
  return found;
}

// A shared result, mapped to its JSON once serialised (null until then). Results not in here are serialised per send.
const jsonOf = new WeakMap<object, string | null>();
// Per document's runner, the sharing runner wrapped around it: one per document, so its subscribers share its results.
const sharing = new WeakMap<Run, Run>();

/**
 * The runner a subscription uses for its events: `run` itself, or, for a context-free field without variables, one
 * that executes an event of a context-free type once and hands every subscriber of the document the same result.
 */
export function eventRunner(run: Run, schema: GraphQLSchema, field: string, variables: Record<string, unknown> | null | undefined): Run {
  const free = contextFree(schema);
  if (!free.fields.has(field) || (variables && Object.keys(variables).length > 0)) return run;
  let shared = sharing.get(run);
  if (shared) return shared;
  const results = new WeakMap<object, ExecutionResult>();
  shared = (root, context, vars) => {
    const typename = (root as { __typename?: unknown } | null)?.__typename;
    if (typeof typename !== "string" || !free.types.has(typename)) return run(root, context, vars);
    const known = results.get(root as object);
    if (known) return known;
    const result = run(root, context, vars);
    // Only a finished, clean result is handed to others: an error is masked and counted per subscriber.
    if (result instanceof Promise || result.errors) return result;
    results.set(root as object, result);
    jsonOf.set(result, null);
    return result;
  };
  sharing.set(run, shared);
  return shared;
}

/** A result's JSON: serialised once for all its subscribers when it is shared, each time otherwise. */
export function resultJson(result: ExecutionResult | FormattedExecutionResult): string {
  const known = jsonOf.get(result);
  if (known) return known;
  const json = JSON.stringify(result);
  if (known === null) jsonOf.set(result, json);
  return json;
}
