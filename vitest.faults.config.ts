// `npm run test:faults`: the fault tests (test/faults), which kill and restart real processes. They need
// DATABASE_URL and REDIS_URL (they skip without them) and run one at a time.
import { defineConfig } from "vitest/config";
import base from "./vitest.config.ts";

export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ["test/faults/**/*.test.ts"],
    pool: "forks",
    testTimeout: 180_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
