// A baseline server of a benchmark (a bare relay, a bare lifecycle) in a process of its own, as the real server
// runs in its own: started with tsx, it prints {"port": n} on its first line.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface BaselineServer {
  port: number;
  pid: number;
  stop(): void;
}

export async function startBaselineServer(script: URL, env: Record<string, string> = {}): Promise<BaselineServer> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(script)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString().split("\n")[0]).port));
    child.once("exit", () => reject(new Error(`${script.pathname} exited`)));
  });
  return { port, pid: child.pid!, stop: () => child.kill() };
}
