#!/usr/bin/env node
// The `deployer` command (package.json "bin"): runs the CLI's TypeScript through tsx, a dependency, so it works
// straight after `npm ci`, with no build step.
import { register } from "tsx/esm/api";

register();
const { runDeployer } = await import("../server/cli/deployer.ts");
await runDeployer(process.argv.slice(2));
