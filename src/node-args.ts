// The node flags the server starts with. They size V8's heap, which is fixed before any of our code runs (unlike
// src/heap-flags.ts, set at start), so they are on every command line that starts the server: `npm start`, the
// Dockerfile's CMD and the tests' and benchmarks' server processes (test/helpers/server.ts), and cluster workers get
// them from the primary (src/workers.ts) even when it was started without them. A test holds those in step.
//
// --max-semi-space-size (MiB): the young generation's two halves, 16 MiB each by default. Under load what a
// scavenge finds alive is the in-flight operations' objects, about the same set however often it runs, so a larger
// young generation copies it less often: at 10,000 lifecycle messages/s offered the server took 74-78 µs per
// message with 64 MiB against 93-94 with the default, and completed 9,794 / 9,825 messages/s against 8,889 / 9,029
// (BENCHMARKS.md, Round 17). The cost is memory: the young generation grows to 128 MiB under load, from 32.
export const SERVER_NODE_ARGS: readonly string[] = ["--max-semi-space-size=64"];

const flagName = (arg: string) => arg.split("=")[0].replace(/_/g, "-");

/**
 * The server's flags that neither these node arguments nor NODE_OPTIONS already give (one given with another value
 * is kept: an operator's own choice wins), to start a process with.
 */
export function missingServerArgs(execArgv: readonly string[], nodeOptions = ""): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(flagName));
  return SERVER_NODE_ARGS.filter((arg) => !given.has(flagName(arg)));
}
