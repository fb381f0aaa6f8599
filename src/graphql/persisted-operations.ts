// Persisted operations: the SDK's documents (src/client/operations) are known to the server by the SHA-256 of their
// text, from the list graphql-codegen writes (src/client/generated/persisted-documents.json, made by `npm run
// generate`, never committed). A client sends `extensions.persistedQuery.sha256Hash` instead of the text; the server
// hands Yoga the document it parsed and validated once at start, so the hot operations skip both per request.
// PERSISTED_OPERATIONS=allow-list runs nothing else (a client cannot send an operation we did not write); accept
// (the default) also runs any other document (GraphiQL, other clients); off knows no hashes at all.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema } from "graphql";
import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import type { Plugin } from "graphql-yoga";

export type PersistedOperationsMode = "allow-list" | "accept" | "off";

export const PERSISTED_DOCUMENTS_FILE = fileURLToPath(new URL("../client/generated/persisted-documents.json", import.meta.url));

// A client that gets NOT_FOUND may resend the text (the SDK does); REQUIRED says that text is not accepted here.
const notFound = () =>
  new GraphQLError("unknown persisted operation: send the document's text, or a client built for this server", {
    extensions: { code: "PERSISTED_QUERY_NOT_FOUND" },
  });
const required = () =>
  new GraphQLError(
    "this server runs only its known operations (PERSISTED_OPERATIONS=allow-list): send a persisted operation's hash " +
      "(extensions.persistedQuery.sha256Hash)",
    { extensions: { code: "PERSISTED_QUERY_REQUIRED" } },
  );
const missing = () =>
  new GraphQLError("send a query, or a persisted operation's hash (extensions.persistedQuery.sha256Hash)", {
    extensions: { code: "BAD_USER_INPUT" },
  });

export interface PersistedOperations {
  mode: PersistedOperationsMode;
  /** How many documents the list holds. */
  size: number;
  /** The Yoga plugins (HTTP; graphql-ws is served outside Yoga's request pipeline and asks forSubscribe). */
  plugins: Plugin[];
  /**
   * For a graphql-ws subscribe message: the source to parse for the known document its hash names (the plugins
   * parse it to that document and skip its validation), a refusal, or null for a document sent as text.
   */
  forSubscribe(params: { query: string; extensions?: unknown }): string | GraphQLError | null;
  /**
   * For a graphql-ws subscribe message naming a known document by hash: that document, parsed and validated at start,
   * for the path that runs it without envelop (src/graphql/ws-execute.ts); null for any other message.
   */
  knownDocument(params: { query: string; extensions?: unknown }): DocumentNode | null;
}

/** What the Yoga plugin puts in place of the text of a persisted operation named by `hash`. */
const sourceOf = (hash: string) => `__PERSISTED_OPERATION_${hash}__`;

type Extensions = { persistedQuery?: { version?: unknown; sha256Hash?: unknown } } | undefined;
const hashOf = (extensions: unknown): string | null => {
  const p = (extensions as Extensions)?.persistedQuery;
  return p?.version === 1 && typeof p.sha256Hash === "string" ? p.sha256Hash : null;
};

/**
 * Reads and checks the list: each document is parsed and validated against the schema here, once, which is what
 * lets requests naming it skip validation. A list that is missing or does not fit the schema stops the start.
 */
export function loadPersistedOperations(
  mode: PersistedOperationsMode,
  schema: GraphQLSchema,
  file = PERSISTED_DOCUMENTS_FILE,
): PersistedOperations {
  const documents = new Map<string, DocumentNode>();
  if (mode !== "off") {
    let list: Record<string, string>;
    try {
      list = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
    } catch (err) {
      throw new Error(`PERSISTED_OPERATIONS=${mode} needs ${file} (run \`npm run generate\`): ${(err as Error).message}`);
    }
    for (const [key, text] of Object.entries(list)) {
      const document = parse(text);
      const errors = validate(schema, document);
      if (errors.length) throw new Error(`persisted operation ${key} does not fit the schema: ${errors[0].message}`);
      documents.set(key.replace(/^sha256:/, ""), document);
    }
  }
  const lookUp = (hash: string) => documents.get(hash.replace(/^sha256:/, "")) ?? null;
  // The plugin hands Yoga this source for a known document; parsing goes through envelop as usual (so the timing
  // metrics label it) but yields the document from the list.
  const bySource = new Map([...documents].map(([hash, doc]) => [sourceOf(hash), doc]));
  const known = new WeakSet<DocumentNode>(documents.values());
  return {
    mode,
    size: documents.size,
    plugins: [
      usePersistedOperations({
        getPersistedOperation: lookUp,
        allowArbitraryOperations: mode !== "allow-list",
        customErrors: { notFound: () => notFound(), persistedQueryOnly: () => required(), keyNotFound: () => missing() },
      }),
      {
        onParse({ params, setParsedDocument }) {
          const doc = typeof params.source === "string" ? bySource.get(params.source) : undefined;
          if (doc) setParsedDocument(doc);
        },
        onValidate({ params, setResult }) {
          if (known.has(params.documentAST)) setResult([]);
        },
      },
    ],
    forSubscribe(params) {
      if (params.query) return mode === "allow-list" ? required() : null;
      const hash = hashOf(params.extensions);
      if (!hash) return missing();
      return lookUp(hash) ? sourceOf(hash.replace(/^sha256:/, "")) : notFound();
    },
    knownDocument(params) {
      const hash = params.query ? null : hashOf(params.extensions);
      return hash ? lookUp(hash) : null;
    },
  };
}
