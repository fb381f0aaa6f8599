// A baseline server of a benchmark (a bare relay, a bare lifecycle) in a process of its own, as the real server
// runs in its own: started with tsx, it prints {"port": n} on its first line.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface BaselineServer {
  port: number;
  pid: number;
  stop(): void;
}

/** `nodeArgs` go to the server's node (e.g. --cpu-prof). */
export async function startBaselineServer(script: URL, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<BaselineServer> {
  const path = fileURLToPath(script);
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString().split("\n")[0]).port));
    child.once("exit", () => reject(new Error(`${path} exited`)));
  });
  return { port, pid: child.pid!, stop: () => child.kill() };
}
