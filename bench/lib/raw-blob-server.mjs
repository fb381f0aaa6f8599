// The baseline for bench:attachments: a bare Node HTTP server that stores a PUT body in a file and streams it back
// on GET. No auth, no protocol, no database: what moving the same bytes over loopback HTTP costs by itself.
import { createReadStream, createWriteStream } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { pipeline } from "node:stream/promises";

const dir = process.argv[2];
const server = createServer(async (req, res) => {
  const file = path.join(dir, path.basename(req.url ?? "x"));
  try {
    if (req.method === "PUT") {
      await pipeline(req, createWriteStream(file));
      res.writeHead(204).end();
    } else {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      await pipeline(createReadStream(file), res);
    }
  } catch {
    res.destroy();
  }
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
