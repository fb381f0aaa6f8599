// Real SDK clients for tests: each in its own temporary account directory, with everything it receives recorded.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { VignetteClient, type ClientEvents, type ReceivedMessage } from "vignette-messaging/client";

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
