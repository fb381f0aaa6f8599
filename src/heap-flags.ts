// V8 flags the server runs with, set before anything else is loaded so that every allocation site starts under them
// (and cluster workers, which run main.ts too, get them without NODE_OPTIONS, which refuses most V8 flags).
//
// Allocation-site pretenuring: V8 allocates the objects of sites whose objects mostly survived scavenges straight in
// the old generation. A server's short-lived objects are the in-flight operations' (a scavenge that comes mid-way
// finds them alive, and they die soon after), so what it pretenures is garbage only a mark-compact takes: in
// bench:prekeys at 1,000 claims/s that was 2-5 mark-compacts in 24 s of claims (each a 5-16 ms pause that every
// waiting claim sits through: the step's p99) against 0-1 without, and the warm step's p99 5.9-24.4 ms against
// 3.9-7.9, with the server's CPU per lifecycle message unchanged and a 50-member group's 5-8% lower (BENCHMARKS.md,
// Round 16).
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--no-allocation-site-pretenuring");
