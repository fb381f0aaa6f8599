// A real S3-compatible server for tests: s3rver (npm) in this process, on a loopback port, with its own directory
// and bucket. In-process because then every test file gets a fresh one with nothing for CI to start or stop, and
// server nodes started as child processes reach it over loopback like any S3 endpoint.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
// @ts-expect-error s3rver ships no types
import S3rver from "s3rver";

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** Server environment pointing the blob store at it. */
  env: Record<string, string>;
  /** Every file s3rver keeps (objects, multipart parts, metadata). */
  files(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startS3(): Promise<TestS3> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "vg-s3rver-"));
  const bucket = "vignette-test";
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: {
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_REGION: "us-east-1",
      // s3rver checks signatures against its fixed development credentials.
      S3_ACCESS_KEY_ID: "S3RVER",
      S3_SECRET_ACCESS_KEY: "S3RVER",
      S3_FORCE_PATH_STYLE: "true",
      S3_PART_BYTES: String(5 * 1024 * 1024),
    },
    files: () => listFiles(directory),
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

/** Files whose bytes contain any needle. Reads each file whole: test blobs are at most tens of MiB. */
export async function filesContaining(files: string[], needles: Uint8Array[]): Promise<string[]> {
  const hits: string[] = [];
  for (const f of files) {
    const bytes = await readFile(f);
    if (needles.some((n) => bytes.indexOf(n) >= 0)) hits.push(f);
  }
  return hits;
}
