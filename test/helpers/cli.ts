// Runs the real `vignette` CLI (bin/vignette.mjs) as child processes for tests.
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import type { TestServer } from "./server.ts";
import { useSdkServer } from "./sdk.ts";

const BIN = fileURLToPath(new URL("../../bin/vignette.mjs", import.meta.url));

export interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

export function vignette(args: string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", "pipe", "pipe"], cwd: os.tmpdir() });
  const run: Run = { child, stdout: "", stderr: "", exited: new Promise((r) => child.once("exit", (code) => r(code))) };
  child.stdout!.on("data", (c: Buffer) => (run.stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (run.stderr += c.toString()));
  return run;
}

/** Runs one command to its end (killed after 45 s). */
export async function finished(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = vignette(args);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), 45_000);
  const code = await run.exited;
  clearTimeout(timer);
  return { code, stdout: run.stdout, stderr: run.stderr };
}

/** A server for the enclosing describe block, and a list of the CLI processes started against it, killed after it. */
export function useCliServer(): { server: TestServer; running: Run[] } {
  const server = useSdkServer();
  const running: Run[] = [];
  afterAll(() => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill("SIGKILL");
  });
  return { server, running };
}
