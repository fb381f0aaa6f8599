// `npm start`: runs one node until SIGTERM or SIGINT, then drains and exits. With WORKERS > 1 this process only
// supervises that many server processes (src/workers.ts), each of which serves as below.
import "./heap-flags.ts";
import cluster from "node:cluster";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { createLogger, type Logger } from "./logger.ts";
import { startApp } from "./app.ts";
import { missingServerArgs } from "./node-args.ts";
import { superviseWorkers } from "./workers.ts";

let config: Config;
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
// A process started by hand (not npm start or the image) runs, slower, without the heap its figures were taken with.
const missing = missingServerArgs(process.execArgv, process.env.NODE_OPTIONS);
if (missing.length > 0 && cluster.isPrimary && config.workers <= 1) {
  logger.warn({ missing }, "started without the server's node flags (src/node-args.ts); npm start gives them");
}
if (config.workers > 1 && cluster.isPrimary) superviseWorkers(config.workers, logger);
else await serve(config, logger);

async function serve(config: Config, logger: Logger) {
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
}
