import { bundleServer } from "../scripts/build-server.js";

/** Builds dist/server.mjs once, so that the tests which start the server run exactly what `npm start` runs. */
export default async function setup(): Promise<void> {
  await bundleServer();
}
