// `vignette send-file` and `listen` as real processes: the file arrives encrypted, is saved under the recipient's
// account directory byte-equal, and the path is printed. Plus the CLI's pure file helpers.
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kindOf, progressLine, savePath } from "../../src/client/cli-files.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startAttachmentServer, type AttachmentServer } from "../helpers/attachments.ts";
import { finished, vignette } from "../helpers/cli.ts";
import { removeTempDirs, tempDir } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";
import { storageIndependentDone } from "../helpers/passes.ts";

describe("CLI file helpers", () => {
  it("picks the kind and type from the extension", () => {
    expect(kindOf("/x/cat.PNG")).toEqual({ kind: "image", contentType: "image/png" });
    expect(kindOf("clip.mp4").kind).toBe("video");
    expect(kindOf("note.ogg").kind).toBe("voice");
    expect(kindOf("archive.tar.gz")).toEqual({ kind: "file", contentType: "application/octet-stream" });
  });

  it("draws bytes, rate and time left", () => {
    const mib = 1024 * 1024;
    expect(progressLine(25 * mib, 50 * mib, 5000, 10)).toBe("[#####.....] 25.0/50.0 MiB  5.0 MiB/s  5s left");
    expect(progressLine(0, 50 * mib, 0, 4)).toBe("[....] 0.0/50.0 MiB  0.0 MiB/s  -- left");
    expect(progressLine(1 * mib, 200 * mib, 10_000, 4)).toContain("33m10s left");
  });

  it("never lets a sender's file name leave the account's attachments directory", () => {
    for (const name of ["../../etc/passwd", "/abs/evil", "..", "...", "a/../../b", "", undefined]) {
      const p = savePath("/acct", "0123456789abcdef", name, "file");
      expect(path.dirname(p)).toBe("/acct/attachments");
      expect(path.basename(p).startsWith("01234567-")).toBe(true);
      expect(path.basename(p)).not.toMatch(/^01234567-\./);
    }
  });
});

describe.skipIf(storageIndependentDone)("vignette send-file and listen", () => {
  let server: AttachmentServer;
  beforeAll(async () => {
    server = await startAttachmentServer("fs");
  });
  afterAll(async () => {
    await server?.close();
    await removeTempDirs();
  });

  /** Two CLI accounts, bob's `listen` running, and a folder for the files to send. */
  async function aliceAndListeningBob() {
    const [aliceDir, bobDir, srcDir] = [await tempDir("vg-cli-"), await tempDir("vg-cli-"), await tempDir("vg-cli-")];
    const [alice, bob] = [uniqueUsername("alice"), uniqueUsername("bob")];
    for (const [dir, name] of [[aliceDir, alice], [bobDir, bob]]) {
      const r = await finished(["--server", server.url, "--dir", dir, "register", name]);
      expect(r.code, r.stderr).toBe(0);
    }
    const listen = vignette(["--dir", bobDir, "listen"]);
    await waitFor(() => listen.stdout.includes("listening as"), "bob listening", 60_000).catch((e) => {
      listen.child.kill("SIGKILL");
      throw e;
    });
    return { alice, bob, aliceDir, bobDir, srcDir, listen };
  }

  it("sends a file that listen saves under the account directory, byte-equal, printing the path", { timeout: 240_000 }, async () => {
    const { alice, bob, aliceDir, bobDir, srcDir, listen } = await aliceAndListeningBob();
    try {
      const file = path.join(srcDir, "holiday photo.jpg");
      const bytes = randomBytes(3 * 1024 * 1024 + 5);
      await writeFile(file, bytes);
      const send = await finished(["--dir", aliceDir, "send-file", bob, file, "--caption", "from the beach"]);
      expect(send.code, send.stderr).toBe(0);
      expect(send.stdout).toMatch(/^sent [0-9a-f-]{36} \(image, 3145733 bytes\)/m);
      const saved = await waitFor(() => /saved (\S.*)$/m.exec(listen.stdout)?.[1], "the saved path", 60_000);
      expect(listen.stdout).toContain("[image holiday photo.jpg, 3145733 bytes] from the beach");
      expect(path.dirname(saved)).toBe(path.join(bobDir, "attachments"));
      expect((await readFile(saved)).equals(bytes)).toBe(true);
    } finally {
      listen.child.kill("SIGTERM");
      await listen.exited;
    }
  });

  it("sends a file into a group: a member's listen saves it under its account directory, byte-equal", { timeout: 300_000 }, async () => {
    const { alice, bob, aliceDir, bobDir, srcDir, listen } = await aliceAndListeningBob();
    const group = uniqueUsername("trip");
    try {
      const created = await finished(["--dir", aliceDir, "group", "create", group, bob]);
      expect(created.code, created.stderr).toBe(0);
      await waitFor(() => listen.stdout.includes(`#${group}: joined`), "bob joined the group", 60_000);
      const file = path.join(srcDir, "route.pdf");
      const bytes = randomBytes(700 * 1024 + 3);
      await writeFile(file, bytes);
      const send = await finished(["--dir", aliceDir, "send-file", "--group", group, file, "--caption", "the route"]);
      expect(send.code, send.stderr).toBe(0);
      expect(send.stdout).toMatch(/^sent g:[0-9a-f-]{36}:\d+ \(file, 716803 bytes\)/m);
      const saved = await waitFor(() => /saved (\S.*)$/m.exec(listen.stdout)?.[1], "the saved path", 60_000);
      expect(listen.stdout).toContain(`#${group} ${alice}: [file route.pdf, 716803 bytes] the route`);
      expect(path.dirname(saved)).toBe(path.join(bobDir, "attachments"));
      expect((await readFile(saved)).equals(bytes)).toBe(true);
    } finally {
      listen.child.kill("SIGTERM");
      await listen.exited;
    }
  });
});
