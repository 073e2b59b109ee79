import { readFileSync } from "node:fs";
import type { Context } from "hono";
import { respondError } from "../errors.js";
import { securityHeaders } from "./render.js";

/**
 * The dashboard's own files, read once at start. From the source they sit
 * beside this module (`assets/`); in the bundle `npm start` runs,
 * scripts/build-server.ts copies them next to dist/server.mjs.
 */
const types: Record<string, string> = {
  "dashboard.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
  "favicon.svg": "image/svg+xml",
};

const files = new Map(Object.keys(types).map((name) => [name, readFileSync(new URL(`./assets/${name}`, import.meta.url))]));

export const assetNames = Object.keys(types);

export function serveAsset(c: Context, name: string) {
  const body = files.get(name);
  if (!body) return respondError(c, "NOT_FOUND", `no dashboard file ${name.slice(0, 100)}`);
  securityHeaders(c);
  c.header("Content-Type", types[name]!);
  c.header("Cache-Control", "public, max-age=300");
  return c.body(new Uint8Array(body));
}
