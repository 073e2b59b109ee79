/**
 * tsx scripts/build-server.ts [entry] [outfile]
 *
 * Bundles the deploy server into one ES module, dist/server.mjs, which
 * `npm start` and Dockerfile.server run with plain `node`. Running the
 * TypeScript through tsx costs ~35 MB of RSS (its loader lives in a worker
 * thread); one bundle also keeps fewer module records than node_modules' many
 * files. Native modules stay external and load from node_modules.
 *
 * Two of dockerode's dependencies load eagerly code that only rare paths
 * use, and they cost more than a third of an idle server's memory: ssh2 (its
 * poly1305 WebAssembly reserves 16 MB up front), needed only for
 * DOCKER_HOST=ssh://, and @grpc/grpc-js with protobufjs, needed only for
 * BuildKit sessions, which the deployer never opens. The bundle loads both on
 * first use instead, from node_modules: left out of the bundle, their 1.4 MB
 * of source is not held in memory either. If a dependency upgrade changes the
 * lines this relies on, the build fails and says which.
 */
import { build, type Plugin } from "esbuild";
import { cp, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

interface LazyRequire {
  /** Module whose source is rewritten (path suffix inside node_modules). */
  file: RegExp;
  eager: string;
  lazy: string;
}

export const lazyRequires: LazyRequire[] = [
  {
    file: /[\\/]docker-modem[\\/]lib[\\/]modem\.js$/,
    eager: "ssh = require('./ssh'),",
    lazy: "ssh = function (opt) { return require('./ssh')(opt); },",
  },
  {
    file: /[\\/]dockerode[\\/]lib[\\/]docker\.js$/,
    eager: "withSession = require('./session'),",
    lazy: "withSession = function () { return require('./session').apply(this, arguments); },",
  },
];

/**
 * What the bundle loads from node_modules: native addons (better-sqlite3,
 * ssh2's optional cpu-features) and the modules required lazily above. The
 * server image stages these (scripts/ci/prepare-server.sh), except gRPC,
 * which nothing the deployer calls reaches.
 */
export const runtimeModules = ["better-sqlite3", "cpu-features", "ssh2", "@grpc/grpc-js", "@grpc/proto-loader"];

const lazyRequirePlugin: Plugin = {
  name: "lazy-require",
  setup(b) {
    for (const rule of lazyRequires) {
      b.onLoad({ filter: rule.file }, async (args) => {
        const source = await readFile(args.path, "utf8");
        if (!source.includes(rule.eager)) {
          return { errors: [{ text: `${args.path} no longer contains \`${rule.eager}\`; update lazyRequires in scripts/build-server.ts` }] };
        }
        return { contents: source.replace(rule.eager, rule.lazy), loader: "js" };
      });
    }
  },
};

// CommonJS dependencies bundled into an ES module still use require, __dirname and __filename.
const banner = [
  "import { createRequire as __createRequire } from 'node:module';",
  "import { fileURLToPath as __fileURLToPath } from 'node:url';",
  "const require = __createRequire(import.meta.url);",
  "const __filename = __fileURLToPath(import.meta.url);",
  "const __dirname = __fileURLToPath(new URL('.', import.meta.url));",
].join("\n");

export async function bundleServer(entry = "server/main.ts", outfile = "dist/server.mjs"): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: [...runtimeModules, "*.node"],
    plugins: [lazyRequirePlugin],
    banner: { js: banner },
    // Whitespace and syntax only: names stay, so stack traces in the logs stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: "linked",
    legalComments: "linked",
    logLevel: "warning",
  });
  // The dashboard's script, stylesheet and icon, read by server/http/dashboard/assets.ts beside the bundle.
  await cp("server/http/dashboard/assets", join(dirname(outfile), "assets"), { recursive: true });
  // V8 keeps the bundle's source in memory: one character above U+00FF (esbuild leaves them in regular
  // expressions) makes the whole 2.4 MB string two bytes a character.
  const wide = /[^\u0000-\u00ff]/.exec(await readFile(outfile, "utf8"));
  if (wide) throw new Error(`${outfile} contains U+${wide[0].codePointAt(0)!.toString(16).padStart(4, "0")}; write it as a \\u escape in the source`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [entry, outfile] = process.argv.slice(2);
  await bundleServer(entry, outfile);
}
