import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // dist/server.mjs, the bundle `npm start` runs, is built before any test starts a server process.
    globalSetup: ["test/global-setup.ts"],
    include: ["test/**/*.test.ts", "server/**/*.test.ts", "web-app/**/*.test.ts"],
    // Docker suites share one engine; files run one at a time so rollouts do not starve each other.
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
