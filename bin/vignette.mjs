#!/usr/bin/env node
// The `vignette` CLI: from a checkout, the TypeScript source through tsx; from an installed package, the built dist/.
import { existsSync } from "node:fs";

const source = new URL("../src/client/cli.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  await import(new URL("../dist/client/cli.js", import.meta.url).href);
}
