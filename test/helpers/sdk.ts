// Real SDK clients for tests: each in its own temporary account directory, with everything it receives recorded.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { VignetteClient, type ClientEvents, type ReceivedMessage } from "vignette-messaging/client";
import { useServer } from "./fixture.ts";
import type { TestServer } from "./server.ts";
import { waitFor } from "./wait.ts";

export interface Recorded {
  messages: ReceivedMessage[];
  events: { [K in keyof ClientEvents]?: ClientEvents[K][] };
}

const dirs: string[] = [];

export async function tempDir(prefix = "vg-sdk-"): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export async function removeTempDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true, maxRetries: 5 });
}

/** Records every event of a client (call before start()). */
export function record(client: VignetteClient): Recorded {
  const r: Recorded = { messages: [], events: {} };
  const kinds: (keyof ClientEvents)[] = [
    "receipt",
    "deleted",
    "expired",
    "typing",
    "presence",
    "safetyNumberChanged",
    "deviceListChanged",
    "preKeysToppedUp",
    "undecryptable",
    "error",
    "groupMessage",
    "groupChanged",
    "messageRequest",
  ];
  client.on("message", (m) => {
    r.messages.push(m);
  });
  for (const k of kinds) client.on(k, (e) => void ((r.events[k] ??= []) as unknown[]).push(e));
  return r;
}

export const texts = (r: Recorded) => r.messages.map((m) => (m.body.kind === "text" ? m.body.text : `[${m.body.kind}]`));

/** Runs an ES module script (tsx) that prints a line once it is busy, lets it go on for ms, then SIGKILLs it. */
export async function killWhileRunning(script: string, ms: number): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((r) => child.once("exit", r));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("the script did not start")), 30_000);
      child.stdout!.on("data", () => (clearTimeout(t), resolve()));
    });
    await new Promise((r) => setTimeout(r, ms));
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

/** A server for the enclosing describe block; the SDK account directories made meanwhile are removed after it. */
export function useSdkServer(env: Record<string, string> = {}): TestServer {
  const server = useServer(env);
  afterAll(removeTempDirs);
  return server;
}

export interface HangingApp {
  /** Resolves once the app printed a line containing text. */
  printed(text: string, what: string): Promise<void>;
  kill(): Promise<void>;
}

/**
 * An app in its own process on the account in dir: for each `event` it prints the line the JavaScript expression
 * `line` (of the handler's argument `e`) makes, then never returns from the handler, as an app busy when it is killed.
 */
export async function startHangingApp(dir: string, event: keyof ClientEvents | "message", line: string): Promise<HangingApp> {
  const script = `
    const { VignetteClient } = await import(${JSON.stringify(path.resolve("src/client/index.ts"))});
    const c = await VignetteClient.open(${JSON.stringify(dir)});
    c.on(${JSON.stringify(event)}, async (e) => { process.stdout.write(${line} + "\\n"); await new Promise(() => {}); });
    await c.start();
    process.stdout.write("started\\n");`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise((r) => child.once("exit", r));
  const app: HangingApp = {
    printed: (text, what) => waitFor(() => out.includes(text), what, 45_000).then(() => undefined),
    kill: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
  try {
    await app.printed("started", "the app's process started");
  } catch (e) {
    await app.kill();
    throw e;
  }
  return app;
}
