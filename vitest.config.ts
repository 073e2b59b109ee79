import { defineConfig } from "vitest/config";

/**
 * Two projects. `fast` (unit and in-process tests: fake swarm, fake registry,
 * real SQLite, server processes without Docker) runs its files in parallel;
 * `docker` (the suites on the real engine, registry and swarm) runs after it,
 * one file at a time, because those suites share one engine and their
 * rollouts would starve each other on two cores.
 */
const dockerSuites = [
  "test/e2e/**/*.test.ts",
  "test/engine/swarm-contract-docker.test.ts",
  "test/engine/engine-paths.test.ts",
  "test/registry/registry-contract-real.test.ts",
];

export default defineConfig({
  test: {
    // dist/server.mjs, the bundle `npm start` runs, is built before any test starts a server process.
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: {
          name: "fast",
          include: ["test/**/*.test.ts", "server/**/*.test.ts", "web-app/**/*.test.ts"],
          exclude: dockerSuites,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "docker",
          include: dockerSuites,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
