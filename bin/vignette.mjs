#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so `vignette` works from any directory.
import { register } from "tsx/esm/api";

register();
await import("../src/client/cli.ts");
