/**
 * node --import tsx scripts/ci/stage-deps.ts <manifest package.json> <out dir>
 *
 * Copies the run-time dependency closure of the manifest's "dependencies"
 * from the repository's installed node_modules into <out dir>/node_modules,
 * keeping npm's layout (nested copies stay nested). Nothing is downloaded
 * and no install script runs.
 */
import { cpSync, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ClosureError, dependencyClosure, type Lockfile } from "./dependency-closure.js";

const [manifestPath, outDir] = process.argv.slice(2);
if (!manifestPath || !outDir) {
  process.stderr.write("usage: stage-deps.ts <package.json> <out dir>\n");
  process.exit(2);
}

const repoRoot = resolve(import.meta.dirname, "../..");
const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as Lockfile;
const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { dependencies?: Record<string, string> };

let paths: string[];
try {
  paths = dependencyClosure(lock, manifest.dependencies ?? {}, (p) => existsSync(join(repoRoot, p, "package.json")));
} catch (err) {
  if (!(err instanceof ClosureError)) throw err;
  process.stderr.write(`stage-deps: ${err.message}\n`);
  process.exit(1);
}

for (const p of paths) {
  const from = join(repoRoot, p);
  // A package's own node_modules holds nested packages, which the closure lists (and copies) separately when needed.
  cpSync(join(repoRoot, p), join(outDir, p), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => src !== join(from, "node_modules"),
  });
}
process.stdout.write(`stage-deps: ${paths.length} packages from ${manifestPath}\n`);
