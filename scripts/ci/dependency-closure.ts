/**
 * Which installed packages a manifest needs at run time, read from the
 * repository's package-lock.json (lockfile v2/v3 `packages` map), so that
 * an image gets exactly the bytes `npm ci` installed and tested, including
 * native modules built on the host, without a registry inside the build.
 */

export interface LockPackage {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  optional?: boolean;
  link?: boolean;
}

export interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockPackage>;
}

export class ClosureError extends Error {
  override readonly name = "ClosureError";
}

/** "node_modules/a/node_modules/@s/b" → "node_modules/a": where node's resolution looks next. */
function parentOf(path: string): string | undefined {
  const i = path.lastIndexOf("node_modules/");
  if (i < 0) return undefined;
  return path.slice(0, Math.max(0, i - 1));
}

/** Node's lookup: the nearest node_modules/<name> walking up from the requiring package. */
function resolve(lock: Lockfile, from: string, name: string): string | undefined {
  for (let dir: string | undefined = from; dir !== undefined; dir = dir === "" ? undefined : parentOf(dir)) {
    const candidate = dir === "" ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
  }
  return undefined;
}

/**
 * The lockfile paths (e.g. "node_modules/hono") of every package reachable
 * from `roots` through dependencies, optional dependencies that are
 * installed, and peer dependencies (npm installs those too). An optional
 * package for another platform is skipped when `isInstalled` says it is not
 * on disk; a required one that is missing is an error.
 */
export function dependencyClosure(lock: Lockfile, roots: Record<string, string>, isInstalled: (path: string) => boolean): string[] {
  if (lock.lockfileVersion < 2 || !lock.packages) throw new ClosureError("package-lock.json must be lockfileVersion 2 or 3 (npm 7+)");
  const seen = new Set<string>();
  const visit = (from: string, name: string, optional: boolean, requiredBy: string) => {
    const path = resolve(lock, from, name);
    if (!path || !isInstalled(path)) {
      if (optional) return;
      throw new ClosureError(`${name} (needed by ${requiredBy}) is not installed: run npm ci first`);
    }
    if (seen.has(path)) return;
    seen.add(path);
    const pkg = lock.packages[path]!;
    if (pkg.link) throw new ClosureError(`${path} is a workspace link, which cannot be staged`);
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(path, dep, false, path);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(path, dep, true, path);
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) visit(path, dep, pkg.peerDependenciesMeta?.[dep]?.optional === true, path);
  };
  for (const name of Object.keys(roots)) visit("", name, false, "the manifest");
  return [...seen].sort();
}
