import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  // `vignette-messaging/client` is the built SDK (dist/) for apps; the tests use its TypeScript source.
  ssr: { resolve: { conditions: ["vignette-source"] } },
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module). Node loads the CJS one for our dependencies; Vite would pick the
    // ESM one for our own files, and two graphql copies cannot share a schema. Pin everything to the one Node uses.
    alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }],
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Fault tests kill and restart processes: they run on their own (npm run test:faults, vitest.faults.config.ts).
    exclude: ["test/faults/**", "node_modules/**"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: more workers than that only adds contention to servers the tests start.
    maxWorkers: 2,
  },
});
