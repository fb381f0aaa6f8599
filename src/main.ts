// `npm start`: runs one node until SIGTERM or SIGINT, then drains and exits.
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { startApp } from "./app.ts";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}
const logger = createLogger(config.logLevel);
const app = await startApp(config, logger);
if (config.graphiql) logger.info(`GraphiQL: http://localhost:${app.port}/graphql`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    app.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err: (err as Error).message }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
