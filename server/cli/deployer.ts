import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { deploymentStatuses, triggerKinds } from "../domain/deployment.js";
import { apiTarget, call, CliError, EXIT, type ApiTarget } from "./api-client.js";
import { isMainModule } from "./command-line.js";
import { exitCodeFor, follow } from "./follow.js";
import {
  deploymentText,
  historyTable,
  printable,
  printableLines,
  servicesTable,
  type DeploymentDetailJson,
  type DeploymentJson,
  type ServiceJson,
} from "./render.js";

/**
 * `deployer`, the package's bin: the REST API from a terminal or a script
 * (DEPLOYER_URL, DEPLOYER_TOKEN), plus the two commands that work on the
 * server's own machine (`token`, `source`). Exit codes: 0 done, 1 the
 * deployment followed failed or was rolled back, 2 a usage, configuration
 * or connection problem, 3 the API refused the request (the envelope's
 * message is printed).
 */

interface ApiFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

const out = (text: string) => process.stdout.write(`${printableLines(text)}\n`);
const print = (flags: ApiFlags, body: unknown, text: () => string) => out(flags.json ? JSON.stringify(body) : text());
const path = (...parts: string[]) => parts.map(encodeURIComponent).join("/");

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 200) throw new InvalidArgumentError("a whole number from 1 to 200");
  return Number(value);
}

/** A command that talks to the API: --url, --token and --json on each, so they may come anywhere on the line. */
function apiCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .option("--url <url>", "the server (default: DEPLOYER_URL)")
    .option("--token <token>", "an API token (default: DEPLOYER_TOKEN; prefer the variable: a flag shows in ps)")
    .option("--json", "print JSON (one object per line for follow)");
}

/** Prints a queued deployment and, with --follow, follows it; the exit code says how it ended. */
async function accepted(target: ApiTarget, flags: ApiFlags & { follow?: boolean }, body: { deployment: DeploymentJson }) {
  const d = body.deployment;
  print(flags, body, () => printable(`${d.status} ${d.id}  ${d.service}  ${d.trigger}  ${d.image}`));
  if (!flags.follow) return;
  const status = await follow({ target, id: d.id, json: flags.json === true, out: process.stdout });
  if (!flags.json) out(`${d.id} ${status}`);
  process.exitCode = exitCodeFor(status);
}

export function buildProgram(): Command {
  const program = new Command("deployer")
    .description("The swarm-deployer's command line: services, history, live rollouts, deploys and rollbacks through the REST API.")
    .enablePositionalOptions()
    .showHelpAfterError("(deployer --help lists the commands)")
    .exitOverride();
  const target = (flags: ApiFlags) => apiTarget(flags);

  apiCommand(program, "services", "the managed services: image, digest, replicas, hold, last deployment").action(async (flags: ApiFlags) => {
    const body = await call<{ items: ServiceJson[] }>(target(flags), "GET", "/api/services");
    print(flags, body, () => servicesTable(body.items));
  });

  apiCommand(program, "history", "deployments, newest first")
    .option("--service <name>", "only this service")
    .addOption(new Option("--status <status>", "only this status").choices(deploymentStatuses))
    .addOption(new Option("--trigger <trigger>", "only this trigger").choices(triggerKinds))
    .option("--limit <n>", "how many (1-200, default 50)", positiveInt)
    .option("--cursor <cursor>", "the next page: the cursor the previous page printed")
    .action(async (flags: ApiFlags & { service?: string; status?: string; trigger?: string; limit?: number; cursor?: string }) => {
      const query = new URLSearchParams();
      for (const key of ["service", "status", "trigger", "limit", "cursor"] as const)
        if (flags[key] !== undefined) query.set(key, String(flags[key]));
      const body = await call<{ items: DeploymentJson[]; nextCursor: string | null }>(target(flags), "GET", `/api/deployments?${query}`);
      print(flags, body, () => historyTable(body.items));
      if (!flags.json && body.nextCursor) process.stderr.write(`more: deployer history --cursor ${printable(body.nextCursor)}\n`);
    });

  apiCommand(program, "show", "one deployment and its timeline")
    .argument("<id>", "the deployment's id (dep_…)")
    .action(async (id: string, flags: ApiFlags) => {
      const body = await call<DeploymentDetailJson>(target(flags), "GET", `/api/deployments/${path(id)}`);
      print(flags, body, () => deploymentText(body));
    });

  apiCommand(program, "follow", "a deployment's progress, live, until it ends; exit 0 succeeded, 1 failed or rolled back")
    .argument("<id>", "the deployment's id (dep_…)")
    .action(async (id: string, flags: ApiFlags) => {
      const status = await follow({ target: target(flags), id, json: flags.json === true, out: process.stdout });
      if (!flags.json) out(`${id} ${status}`);
      process.exitCode = exitCodeFor(status);
    });

  apiCommand(program, "deploy", "deploy a tag (resolved like a push) or a digest of the service's repository")
    .argument("<service>", "the swarm service")
    .option("--tag <tag>", "a tag of the service's repository")
    .option("--digest <digest>", "a digest (sha256:…) of the service's repository")
    .option("--follow", "follow the deployment to its end")
    .action(async (service: string, flags: ApiFlags & { tag?: string; digest?: string; follow?: boolean }) => {
      if ((flags.tag === undefined) === (flags.digest === undefined)) throw new CliError("deploy needs exactly one of --tag or --digest", EXIT.usage);
      const t = target(flags);
      const body = flags.tag !== undefined ? { tag: flags.tag } : { digest: flags.digest };
      await accepted(t, flags, await call(t, "POST", `/api/services/${path(service)}/deploy`, body));
    });

  apiCommand(program, "rollback", "redeploy an earlier success (the newest, or --to) and hold the service")
    .argument("<service>", "the swarm service")
    .option("--to <id>", "the deployment whose digest to redeploy")
    .option("--follow", "follow the rollback to its end")
    .action(async (service: string, flags: ApiFlags & { to?: string; follow?: boolean }) => {
      const t = target(flags);
      await accepted(t, flags, await call(t, "POST", `/api/services/${path(service)}/rollback`, flags.to ? { to: flags.to } : {}));
    });

  apiCommand(program, "resume", "lift the hold a rollback left on the service")
    .argument("<service>", "the swarm service")
    .action(async (service: string, flags: ApiFlags) => {
      const body = await call<{ service: string; wasHeld: boolean }>(target(flags), "POST", `/api/services/${path(service)}/resume`);
      print(flags, body, () => (body.wasHeld ? `resumed ${body.service}` : `${body.service} was not held`));
    });

  for (const [verb, description] of [
    ["approve", "approve a deployment awaiting approval (deployer.approve=required); it deploys once its other gates allow"],
    ["reject", "reject a deployment awaiting approval; it ends rejected and the service is left as it is"],
  ] as const) {
    apiCommand(program, verb, description)
      .argument("<id>", "the deployment's id (dep_…)")
      .option("--follow", "follow the approved deployment to its end")
      .action(async (id: string, flags: ApiFlags & { follow?: boolean }) => {
        const t = target(flags);
        await accepted(t, { ...flags, follow: verb === "approve" && flags.follow }, await call(t, "POST", `/api/deployments/${path(id)}/${verb}`));
      });
  }

  apiCommand(program, "backup", "an online, consistent copy of the database (through the API, or --local from the file)")
    .argument("<file>", "where to write the copy (a SQLite file)")
    .option("--local", "copy the database file on this machine (DEPLOYER_DB or --db) instead of asking the server")
    .option("--db <path>", "with --local: the database file (default DEPLOYER_DB, ./data/deployer.db)")
    .option("--force", "replace FILE if it exists")
    .action(async (file: string, flags: ApiFlags & { local?: boolean; db?: string; force?: boolean }) => {
      // Loaded when asked for, like token and source: the commands of the API start without the store's modules.
      const { backup } = await import("./backup-command.js");
      const done = await backup({ file, local: flags.local === true, db: flags.db, force: flags.force === true, target: () => target(flags) });
      print(flags, done, () => `wrote ${done.file} (${done.bytes} bytes, ${done.via === "api" ? "from the server" : "from the local file"})`);
    });

  for (const [name, run, description] of [
    [
      "token",
      async (args: string[]) => (await import("./token.js")).runTokenCommand(args),
      "mint a webhook or API token with the server's key (deployer token --help)",
    ],
    [
      "source",
      async (args: string[]) => (await import("./source.js")).runSourceCommand(args),
      "manage push sources in the server's database (deployer source --help)",
    ],
  ] as const) {
    program
      .command(name)
      .description(description)
      .helpOption(false)
      .passThroughOptions()
      .allowUnknownOption()
      .argument("[args...]")
      .action(async (args: string[]) => {
        await run(args);
      });
  }
  return program;
}

/** Runs the command line; sets process.exitCode, prints errors as one line, never the token. */
export async function runDeployer(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; a usage error (commander printed it) is 2.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    process.exitCode = err instanceof CliError ? err.exitCode : EXIT.usage;
    process.stderr.write(`deployer: ${printable((err as Error).message)}\n`);
  }
}

if (isMainModule(import.meta.url)) await runDeployer(process.argv.slice(2));
