import { createServer } from "node:net";

/** Every port handed out in this process: a test holds on to its ports until it binds them, so none is given twice. */
const handedOut = new Set<number>();

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/**
 * A port on 127.0.0.1 that was free a moment ago and that this process has
 * not handed out before: a port picked for the server and not bound yet was
 * once picked again for a registry started in between, and the server then
 * could not listen.
 */
export async function freePortOnLoopback(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await anyFreePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error("no port on 127.0.0.1 that was not handed out already");
}
