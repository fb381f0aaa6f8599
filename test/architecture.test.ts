// The layout's rules, checked on every test run: no import cycle in src/ (madge, type imports included), the SDK
// imports nothing of the server, and no source file grows past MAX_LINES.
import { readFileSync } from "node:fs";
import path from "node:path";
import madge from "madge";
import { beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const MAX_LINES = 450;

const graphOf = (dir: string) =>
  madge(path.join(root, dir), {
    fileExtensions: ["ts"],
    tsConfig: path.join(root, "tsconfig.json"),
    excludeRegExp: [/(^|\/)generated\//],
    detectiveOptions: { ts: { skipTypeImports: false }, es6: { skipTypeImports: false } },
  });

describe("architecture", () => {
  let src: Awaited<ReturnType<typeof madge>>;
  beforeAll(async () => {
    src = await graphOf("src");
  });

  it("finds an import cycle where there is one (the check itself works)", async () => {
    const fixture = await graphOf("test/fixtures/cycle");
    expect(fixture.circular()).toEqual([["a.ts", "b.ts"]]);
  });

  it("has no import cycle in src/", () => {
    expect(Object.keys(src.obj()).length).toBeGreaterThan(50);
    expect(src.circular()).toEqual([]);
  });

  it("the SDK (src/client/) imports nothing of the server but generated types", () => {
    const crossing = Object.entries(src.obj())
      .filter(([file]) => file.startsWith("client/"))
      .flatMap(([file, deps]) => deps.filter((d) => !d.startsWith("client/")).map((d) => `${file} -> ${d}`));
    expect(crossing).toEqual([]);
  });

  it(`no source file in src/ (generated code aside) is over ${MAX_LINES} lines`, () => {
    const files = Object.keys(src.obj());
    const long = files
      .map((f) => ({ f, lines: readFileSync(path.join(root, "src", f), "utf8").split("\n").length }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ f, lines }) => `${f}: ${lines}`);
    expect(long).toEqual([]);
  });
});
