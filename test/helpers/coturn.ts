// A real coturn (Debian `coturn`) for tests: started on a free loopback port with use-auth-secret (TURN REST API
// credentials), its files in a temporary directory, killed by stop(). Plus turnutils_uclient to try a credential.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import dgram from "node:dgram";
import os from "node:os";
import path from "node:path";

export interface Coturn {
  port: number;
  secret: string;
  realm: string;
  /** turn:127.0.0.1:<port>, for TURN_URLS. */
  url: string;
  logs: string[];
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 for both TCP and UDP (coturn listens on both). Bounded tries. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
      s.on("error", reject);
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error("no free loopback port for coturn");
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

/** CI installs coturn (.ci/run); a developer machine without it skips the tests that need it. */
export function hasCoturn(): boolean {
  return existsSync("/usr/bin/turnserver") || process.env.CI === "true";
}

export async function startCoturn(): Promise<Coturn> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "vg-coturn-"));
  const port = await freePort();
  const secret = randomBytes(24).toString("hex");
  const realm = "vignette.test";
  // The flags NOTES.md found to work here (--allow-loopback-peers needs --no-cli); pid file and user database in the
  // temporary directory so parallel instances never share them. Relay ports come from coturn's default range.
  const child: ChildProcess = spawn(
    "turnserver",
    [
      "-n",
      "--listening-ip=127.0.0.1",
      "--relay-ip=127.0.0.1",
      `--listening-port=${port}`,
      "--use-auth-secret",
      `--static-auth-secret=${secret}`,
      `--realm=${realm}`,
      "--no-tls",
      "--no-dtls",
      "--allow-loopback-peers",
      "--no-cli",
      "--log-file=stdout",
      "--simple-log",
      // Session lines ("user <...>: incoming packet ALLOCATE processed, success") are only logged when verbose.
      "--verbose",
      `--pidfile=${path.join(dir, "turnserver.pid")}`,
      `--userdb=${path.join(dir, "turndb")}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const logs: string[] = [];
  child.stdout!.on("data", (c: Buffer) => logs.push(...c.toString().split("\n").filter(Boolean)));
  child.stderr!.on("data", (c: Buffer) => logs.push(c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`coturn did not start:\n${logs.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, secret, realm, url: `turn:127.0.0.1:${port}`, logs, stop };
}

/** Tries an allocation (and a relayed echo) with turnutils_uclient: true when coturn accepted the credential. */
export function tryAllocation(turn: Coturn, username: string, password: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      "turnutils_uclient",
      ["-u", username, "-w", password, "-p", String(turn.port), "-y", "-n", "1", "-m", "1", "127.0.0.1"],
      { timeout: 15_000 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        resolve({ ok: !err && !/Cannot complete Allocation|ERROR/.test(output) && /tot_recv_bytes ~ [1-9]/.test(output), output });
      },
    );
  });
}
