import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A command line the CLI cannot run: the message, then the usage, exit code 2. */
export class UsageError extends Error {}
/** `--help` / `-h`: the usage on stdout, exit code 0. */
export class HelpRequested extends Error {}

/** parseArgs, strict and with positionals, for the CLIs: a parse error is a UsageError, `--help` a HelpRequested. */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: O) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if ((parsed.values as { help?: unknown }).help) throw new HelpRequested();
  return parsed;
}

/** Whether the module at `url` is the script node (or tsx) was started with, rather than imported by `deployer`. */
export function isMainModule(url: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === url;
  } catch {
    return false;
  }
}
