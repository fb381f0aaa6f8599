// Limits on the shape of an operation, from GraphQL Armor's envelop plugins: depth, cost, aliases, directives and
// tokens (the token limit runs in the parser, so a huge document is refused before it is built). Field suggestions
// ("Did you mean ...?") are hidden from callers without a valid token, who would otherwise map the schema with
// them; introspection can be switched off. All of it is envelop, so HTTP and graphql-ws get the same armor.
import { blockFieldSuggestionsPlugin } from "@escape.tech/graphql-armor-block-field-suggestions";
import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import { NoSchemaIntrospectionCustomRule, type GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.ts";
import type { Actor } from "../services/deps.ts";

// Armor's errors carry no code; ours say what kind of refusal it was.
const tagged = {
  onReject: [(_ctx: unknown, err: GraphQLError) => void ((err.extensions as Record<string, unknown>).code = "LIMIT_EXCEEDED")],
  propagateOnRejection: true,
};

export function armorPlugins(armor: Config["armor"]): Plugin[] {
  const suggestions = blockFieldSuggestionsPlugin();
  return [
    maxTokensPlugin({ n: armor.maxTokens, ...tagged }),
    maxDepthPlugin({ n: armor.maxDepth, ignoreIntrospection: true, flattenFragments: true, ...tagged }),
    costLimitPlugin({ maxCost: armor.maxCost, ignoreIntrospection: true, ...tagged }),
    maxAliasesPlugin({ n: armor.maxAliases, ...tagged }),
    maxDirectivesPlugin({ n: armor.maxDirectives, ...tagged }),
    {
      // The initial context carries the caller the HTTP or WebSocket layer authenticated before validation.
      onValidate: (payload) => {
        if ((payload.context as { actor?: Actor | null }).actor) return;
        return (suggestions.onValidate as (p: typeof payload) => ReturnType<NonNullable<Plugin["onValidate"]>>)(payload);
      },
    },
    ...(armor.introspection
      ? []
      : [{ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) } satisfies Plugin]),
  ] as Plugin[];
}
