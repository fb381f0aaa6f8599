// Typed documents for every operation in src/client/operations, used by the client SDK and the tests.
// `npm run codegen` (run by `npm run generate`, which `npm test` and `npm start` run first).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "schema.graphql",
  documents: ["src/client/operations/**/*.graphql"],
  ignoreNoDocuments: false,
  // `./graphql.js`, not `./graphql`: the SDK is also compiled for plain Node (tsconfig.client.json), which needs them.
  emitLegacyCommonJSImports: false,
  generates: {
    "src/client/generated/": {
      preset: "client",
      // persisted-documents.json (hash -> document): the server's list of known operations (PERSISTED_OPERATIONS);
      // each document carries its hash in `__meta__.hash`, which the SDK sends instead of the text.
      presetConfig: { fragmentMasking: false, persistedDocuments: { mode: "embedHashInDocument", hashAlgorithm: "sha256" } },
      config: {
        scalars: { Bytes: "string", DateTime: "string" },
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
      },
    },
  },
  hooks: {},
};

export default config;
