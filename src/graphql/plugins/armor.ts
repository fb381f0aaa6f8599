// Limits on the shape of an operation, from GraphQL Armor's envelop plugins: depth, cost, aliases, directives and
// tokens (the token limit runs in the parser, so a huge document is refused before it is built). Field suggestions
// ("Did you mean ...?") are hidden from callers without a valid token, who would otherwise map the schema with
// them; introspection can be switched off. All of it is envelop, so HTTP and graphql-ws get the same armor.
import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import { GraphQLError, NoSchemaIntrospectionCustomRule } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../../config.ts";
import type { Actor } from "../../deps.ts";

// Armor's errors carry no code; ours say what kind of refusal it was.
const tagged = {
  onReject: [(_ctx: unknown, err: GraphQLError) => void ((err.extensions as Record<string, unknown>).code = "LIMIT_EXCEEDED")],
  propagateOnRejection: true,
};

const SUGGESTION = /\s*Did you mean .+\?$/;

/**
 * Armor's own suggestion blocker edits the error objects in place, and Yoga caches validation results per document
 * (after this hook has run): masking must neither leak into a device's answer nor be lost for a stranger. So the
 * masked errors are copies that remember their original, and each caller gets the version meant for them.
 */
const originals = new WeakMap<GraphQLError, GraphQLError>();
const hideSuggestionsFromStrangers: Plugin = {
  onValidate: ({ context }) => {
    // The initial context carries the caller the HTTP or WebSocket layer authenticated before validation.
    const authenticated = !!(context as { actor?: Actor | null }).actor;
    return ({ valid, result, setResult }) => {
      if (valid) return;
      setResult(
        result.map((e) => {
          const original = originals.get(e) ?? e;
          if (authenticated || !SUGGESTION.test(original.message)) return original;
          const masked = new GraphQLError(original.message.replace(SUGGESTION, ""), {
            nodes: original.nodes,
            extensions: original.extensions,
          });
          originals.set(masked, original);
          return masked;
        }),
      );
    };
  },
};

export function armorPlugins(armor: Config["armor"]): Plugin[] {
  return [
    maxTokensPlugin({ n: armor.maxTokens, ...tagged }),
    maxDepthPlugin({ n: armor.maxDepth, ignoreIntrospection: true, flattenFragments: true, ...tagged }),
    costLimitPlugin({ maxCost: armor.maxCost, ignoreIntrospection: true, ...tagged }),
    maxAliasesPlugin({ n: armor.maxAliases, ...tagged }),
    maxDirectivesPlugin({ n: armor.maxDirectives, ...tagged }),
    hideSuggestionsFromStrangers,
    ...(armor.introspection
      ? []
      : [{ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) } satisfies Plugin]),
  ] as Plugin[];
}
