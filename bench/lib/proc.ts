// What a process on this machine holds, read from /proc (Linux).
import { execSync } from "node:child_process";
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
