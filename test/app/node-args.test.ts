// The node flags the server starts with (src/node-args.ts): added only where not given, and on every command line
// that starts the server (npm start, the Dockerfile), so that what was measured is what runs.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { missingServerArgs, SERVER_NODE_ARGS } from "../../src/node-args.ts";

const root = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");

describe("the server's node flags", () => {
  it("are all added to a process started without them", () => {
    expect(SERVER_NODE_ARGS).toContain("--max-semi-space-size=64");
    expect(missingServerArgs([])).toEqual(SERVER_NODE_ARGS);
    expect(missingServerArgs(["--import", "tsx"], "--enable-source-maps")).toEqual(SERVER_NODE_ARGS);
  });

  it("are not repeated, and an operator's own value of one wins (on the command line or in NODE_OPTIONS)", () => {
    expect(missingServerArgs([...SERVER_NODE_ARGS])).toEqual([]);
    expect(missingServerArgs(["--max-semi-space-size=16"])).toEqual([]);
    expect(missingServerArgs([], "--inspect  --max-semi-space-size=128")).toEqual([]);
    expect(missingServerArgs(["--max_semi_space_size=32"])).toEqual([]);
  });

  it("are on npm start's and the Dockerfile's command lines", () => {
    const start = JSON.parse(root("package.json")).scripts.start as string;
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(root("Dockerfile"))![1]) as string[];
    for (const arg of SERVER_NODE_ARGS) {
      expect(start.split(" ")).toContain(arg);
      expect(cmd.slice(0, cmd.indexOf("src/main.ts"))).toContain(arg);
    }
  });
});
