import { HelpRequested, parseCommandLine, UsageError } from "./command-line.js";
import { createSourceSecrets } from "../auth/source-secrets.js";
import { loadConfig } from "../config/config.js";
import { AppError } from "../domain/app-error.js";
import { createIdGenerator } from "../domain/ids.js";
import { sourceHookPath, sourceKinds } from "../domain/source.js";
import { toSourceJson } from "../http/api/source-routes.js";
import { createSourceOperations, DEFAULT_GRACE, parseGrace } from "../operations/manage-sources.js";
import { resolveSecret } from "../secret.js";
import { openDatabase } from "../store/database.js";
import { createSourceStore, type SourceRecord } from "../store/source-store.js";

/**
 * `npm run source -- add|list|rotate|remove`: the push sources, managed on
 * the machine that holds the server's key, like the token CLI. It writes the
 * database directly rather than calling the API: it needs the key anyway to
 * seal HMAC secrets, it works before any API token with `sources:admin`
 * exists and while the server is down, and the server reads sources from the
 * database on every delivery, so a change takes effect at once.
 */

const USAGE = `usage:
  npm run -s source -- add --kind KIND --repo PATTERN [--repo PATTERN]... [--service NAME]... [--header NAME] [--json]
  npm run -s source -- list [--json]
  npm run -s source -- rotate ID [--grace 24h] [--json]
  npm run -s source -- remove ID [--json]

  --kind     ${sourceKinds.join(", ")}
  --repo     repository pattern the source may deploy, read like an image name (ghcr.io/acme/*)
  --service  limit the source to these swarm services (default: any service the repos reach)
  --header   ecr only: the header the API destination sends the key in (default x-api-key)
  --grace    how long the old secret stays valid after a rotation: 0, 30m, 24h (default), 7d
  --json     print JSON instead of text

The secret is printed once: only its hash (or, for github and gitea, a form sealed
with the server's key) is stored. URLs start with DEPLOYER_URL (default http://localhost:PORT).
`;

const options = {
  kind: { type: "string" },
  repo: { type: "string", multiple: true },
  service: { type: "string", multiple: true },
  header: { type: "string" },
  grace: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function describe(source: SourceRecord): string {
  const services = source.services ? ` services=${source.services.join(",")}` : "";
  const header = source.headerName ? ` header=${source.headerName}` : "";
  const state = source.revokedAt === null ? "active" : "revoked";
  return `${source.id}  ${source.kind}  ${state}  repos=${source.repos.join(",")}${services}${header}`;
}

function main(argv: string[]): string {
  const { values, positionals } = parseCommandLine(argv, options);
  const [verb, id, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (!verb || !["add", "list", "rotate", "remove"].includes(verb)) throw new UsageError(verb ? `unknown command "${verb}"` : "name a command");
  const needsId = verb === "rotate" || verb === "remove";
  if (needsId && !id) throw new UsageError(`${verb} needs the source id`);
  if (!needsId && id) throw new UsageError(`unexpected argument "${id}"`);
  if (verb !== "add" && (values.kind || values.repo || values.service || values.header))
    throw new UsageError("--kind, --repo, --service and --header are for add");
  if (verb !== "rotate" && values.grace) throw new UsageError("--grace is for rotate");
  if (verb === "add" && (!values.kind || !values.repo?.length)) throw new UsageError("add needs --kind and at least one --repo");
  const graceMs = verb === "rotate" ? parseGrace(values.grace ?? DEFAULT_GRACE) : 0;

  const config = loadConfig(process.env);
  const resolved = resolveSecret(config, { generate: true });
  if (resolved.source === "generated")
    process.stderr.write(`source: generated a new server key at ${resolved.path}; the server reads it from there\n`);
  const database = openDatabase(config.store.dbPath);
  try {
    const sources = createSourceStore(database.db, Date.now);
    const secrets = createSourceSecrets({ serverSecret: resolved.secret, previousServerSecret: config.auth.secretPrevious });
    const ops = createSourceOperations({ sources, secrets, dockerHubRegistry: config.registry.dockerHub, now: Date.now, newId: createIdGenerator() });
    const base = (process.env.DEPLOYER_URL ?? `http://localhost:${config.http.port}`).replace(/\/+$/, "");
    const issued = (r: { source: SourceRecord; secret: string }) => {
      const url = `${base}${sourceHookPath(r.source.kind, r.source.id, r.secret)}`;
      if (values.json) return JSON.stringify({ source: toSourceJson(r.source, r.secret), secret: r.secret, url });
      const header = r.source.headerName ? `\nheader  ${r.source.headerName}` : "";
      return `id      ${r.source.id}\nkind    ${r.source.kind}\nsecret  ${r.secret}\nurl     ${url}${header}\n(the secret is shown only now)`;
    };
    switch (verb) {
      case "add":
        return issued(ops.add({ kind: values.kind!, repos: values.repo!, services: values.service, header: values.header }));
      case "rotate": {
        const result = ops.rotate(id!, graceMs);
        const until = result.source.previousUntil ? new Date(result.source.previousUntil).toISOString() : "now (no grace)";
        if (!values.json) process.stderr.write(`source: the previous secret stays valid until ${until}\n`);
        return issued(result);
      }
      case "remove": {
        const removed = ops.remove(id!);
        return values.json ? JSON.stringify({ source: toSourceJson(removed) }) : `revoked ${removed.id}`;
      }
      default: {
        const all = ops.list();
        if (values.json) return JSON.stringify({ items: all.map((s) => toSourceJson(s)) });
        return all.length ? all.map(describe).join("\n") : "(no sources)";
      }
    }
  } finally {
    database.close();
  }
}

try {
  process.stdout.write(`${main(process.argv.slice(2))}\n`);
} catch (err) {
  if (err instanceof HelpRequested) {
    process.stdout.write(USAGE);
  } else {
    // A refused input is a usage problem (2), like the token CLI; an unknown id is 1.
    process.exitCode = err instanceof AppError && err.code === "NOT_FOUND" ? 1 : 2;
    if ((err as Error).message) process.stderr.write(`source: ${(err as Error).message}\n`);
    if (err instanceof UsageError) process.stderr.write(USAGE);
  }
}
