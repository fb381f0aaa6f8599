// Real servers for tests: in-process (fast, one node) or as child processes (several nodes, kill -9).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startApp, type App } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { missingServerArgs } from "../../src/node-args.ts";
import { createLogger } from "../../src/logger.ts";
import { HttpTransport } from "../../src/client/transport.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";

export interface TestServer {
  url: string;
  app: App;
  db: TestDatabase;
  http(token?: string | null): HttpTransport;
  close(): Promise<void>;
}

/** A bus prefix per test file, so files sharing one Redis never see each other's events. */
export function busPrefix(): string {
  return `vgtest:${randomBytes(4).toString("hex")}:`;
}

export function baseEnv(db: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    // Tests register accounts, send and open sockets from one address far beyond the production limits; the
    // abuse-limit tests (test/graphql/rate-limits.test.ts, test/http/connections-per-ip.test.ts) set their own.
    RATE_LIMITS: "off",
    MAX_CONNECTIONS_PER_IP: "0",
    ...db.env,
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...extra,
  };
}

export async function startServer(
  extra: Record<string, string> = {},
  shared?: { db: TestDatabase },
): Promise<TestServer> {
  const db = shared?.db ?? (await createTestDatabase());
  const config = loadConfig(baseEnv(db, { BUS_PREFIX: busPrefix(), ...extra }));
  const app = await startApp(config, createLogger(config.logLevel));
  return {
    url: app.url,
    app,
    db,
    http: (token = null) => new HttpTransport(app.url, token),
    async close() {
      await app.close();
      if (!shared) await db.drop();
    },
  };
}

export interface NodeProcess {
  url: string;
  port: number;
  child: ChildProcess;
  logs: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

/** Starts `src/main.ts` as its own process and waits until it listens; `nodeArgs` go to node (e.g. --cpu-prof). */
export function spawnNode(env: Record<string, string>, nodeArgs: string[] = []): Promise<NodeProcess> {
  // The flags `npm start` gives the server (src/node-args.ts), so that tests and benchmarks run it as it runs; one
  // that the caller's node arguments or NODE_OPTIONS give otherwise (a benchmark's experiment) is theirs.
  const serverArgs = missingServerArgs(nodeArgs, env.NODE_OPTIONS ?? process.env.NODE_OPTIONS);
  const child = spawn(process.execPath, [...serverArgs, ...nodeArgs, "--import", "tsx", MAIN], {
    // Readiness is read from the "listening" log line, so this process logs at info whatever the test asked.
    env: { ...process.env, ...env, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // A node that never came up must not outlive the test as an orphan holding a database and a core.
      child.kill("SIGKILL");
      reject(new Error(`node did not start:\n${logs.join("\n")}`));
    }, 60_000);
    let buffered = "";
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        const m = /"port":(\d+).*"msg":"vignette listening"/.exec(line);
        if (m) {
          clearTimeout(timer);
          const port = Number(m[1]);
          resolve({
            url: `http://127.0.0.1:${port}/graphql`,
            port,
            child,
            logs,
            exited,
            stop: async (signal = "SIGTERM") => {
              if (child.exitCode === null && child.signalCode === null) child.kill(signal);
              return exited;
            },
          });
        }
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (c: Buffer) => logs.push(c.toString()));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before listening:\n${logs.join("\n")}`));
    });
  });
}
