import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { createApp } from "./app.js";
import { ConfigError, loadConfig, type WebAppConfig } from "./config.js";
import { startServer } from "./graceful-server.js";
import { createRenderer } from "./templates.js";

/** The web app's composition root: the only module that reads the environment or handles signals. */

// One JSON line per event, so `docker service logs` stays greppable.
const log = (msg: string, fields: Record<string, unknown> = {}) => console.log(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }));

let config: WebAppConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`invalid configuration: ${err.message}\n`);
  process.exit(2);
}

// Beside this file in the source tree and in the image alike (the build copies templates/ next to main.js).
const templatesDir = fileURLToPath(new URL("./templates/", import.meta.url));
const app = createApp({ version: config.version, hostname: hostname(), render: createRenderer(templatesDir) });
const server = await startServer({ fetch: app.fetch, port: config.port, hostname: config.host });
log("listening", { port: server.port, version: config.version });

const stop = (signal: string) => {
  log("draining", { signal });
  void server.shutdown(config.shutdownTimeoutMs).then(() => {
    log("stopped", { signal });
    process.exit(0);
  });
};
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
