// What a process on this machine holds, read from /proc (Linux).
import { execSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** This process's open-file limit (each socket is one file on both ends). */
export function openFileLimit(): number {
  return Number(execSync("ulimit -n", { shell: "/bin/sh" }).toString().trim());
}

const CLOCK_TICKS = Number(execSync("getconf CLK_TCK").toString().trim()) || 100;

/**
 * CPU time a process has used so far (user + system), in seconds. Differences of it over a step give the CPU cost
 * per operation, which, unlike throughput, hardly moves when other work shares the machine.
 */
export function cpuSeconds(pid: number): number {
  // Fields after the command name (which may hold spaces) start at the state; utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A server's processes: itself and, with WORKERS > 1, its worker processes (children named node). */
export function serverProcesses(pid: number): number[] {
  const out = spawnSync("pgrep", ["-x", "-P", String(pid), "node"]).stdout.toString().trim();
  return [pid, ...(out ? out.split("\n").map(Number) : [])];
}
