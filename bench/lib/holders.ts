// Child load processes holding connections for bench:connections (see holder-process.ts), each below the open-file
// limit; the bench's own process keeps the sockets it probes.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { HoldOrder, HoldReport } from "./holder-process.ts";

const SCRIPT = fileURLToPath(new URL("./holder-process.ts", import.meta.url));

export class Holders {
  private children: ChildProcess[] = [];

  /** Connects these devices from one new holder process; resolves when it has tried them all. */
  hold(order: HoldOrder): Promise<HoldReport> {
    const child = fork(SCRIPT, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.children.push(child);
    return new Promise((resolve, reject) => {
      child.once("message", (r) => resolve(r as HoldReport));
      child.once("exit", (code) => reject(new Error(`holder exited with ${code}`)));
      child.send(order);
    });
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid!);
  }

  stop(): void {
    for (const c of this.children) c.kill("SIGKILL");
  }
}
