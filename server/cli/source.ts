import { printable } from "./render.js";
import { HelpRequested, isMainModule, parseCommandLine, UsageError } from "./command-line.js";
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
  npm run -s source -- add --kind gar --repo PATTERN... --audience AUD --email SERVICE_ACCOUNT [--issuer URL] [--jwks-url URL]
  npm run -s source -- add --kind oidc --repo PATTERN... --audience AUD --claim NAME=PATTERN... [--issuer URL] [--jwks-url URL]
  npm run -s source -- list [--json]
  npm run -s source -- rotate ID [--grace 24h] [--json]
  npm run -s source -- remove ID [--json]

  --kind     ${sourceKinds.join(", ")}
  --repo     repository pattern the source may deploy, read like an image name (ghcr.io/acme/*)
  --service  limit the source to these swarm services (default: any service the repos reach)
  --header   ecr only: the header the API destination sends the key in (default x-api-key)
  --audience gar, oidc: the aud the tokens are issued for (the push subscription's audience; core.getIDToken's)
  --email    gar: the push subscription's service account
  --claim    oidc: a claim rule, NAME=PATTERN (* for any characters), e.g. repository=acme/web, ref=refs/heads/main;
             repeat a NAME for alternatives; every NAME must match
  --issuer   gar, oidc: default https://accounts.google.com (gar), https://token.actions.githubusercontent.com (oidc)
  --jwks-url gar, oidc: the issuer's keys (default Google's certs, or <issuer>/.well-known/jwks)
  --grace    how long the old secret stays valid after a rotation: 0, 30m, 24h (default), 7d
  --json     print JSON instead of text

The secret is printed once: only its hash (or, for github and gitea, a form sealed
with the server's key) is stored. gar and oidc sources have no secret, and no rotate. URLs start with DEPLOYER_URL (default http://localhost:PORT).
`;

const options = {
  kind: { type: "string" },
  repo: { type: "string", multiple: true },
  service: { type: "string", multiple: true },
  header: { type: "string" },
  audience: { type: "string" },
  email: { type: "string" },
  claim: { type: "string", multiple: true },
  issuer: { type: "string" },
  "jwks-url": { type: "string" },
  grace: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function describe(source: SourceRecord): string {
  const services = source.services ? ` services=${source.services.join(",")}` : "";
  const header = source.headerName ? ` header=${source.headerName}` : "";
  const state = source.revokedAt === null ? "active" : "revoked";
  const oidc = source.oidc ? `  issuer=${source.oidc.issuer} audience=${source.oidc.audience}` : "";
  const email = source.oidc?.email ? ` email=${source.oidc.email}` : "";
  const claims = Object.entries(source.oidc?.claims ?? {}).map(([name, patterns]) => ` ${name}=${patterns.join("|")}`);
  // What an admin token stored is shown, not acted on by the terminal (render.ts printable()).
  return printable(`${source.id}  ${source.kind}  ${state}  repos=${source.repos.join(",")}${services}${header}${oidc}${email}${claims.join("")}`);
}

/** `--claim repository=acme/web --claim ref=refs/heads/*` → { repository: [...], ref: [...] }. */
function claimRules(values: string[] | undefined): Record<string, string[]> | undefined {
  if (!values?.length) return undefined;
  const rules: Record<string, string[]> = {};
  for (const value of values) {
    const eq = value.indexOf("=");
    if (eq <= 0 || eq === value.length - 1) throw new UsageError(`--claim: expected NAME=PATTERN, got "${value}"`);
    (rules[value.slice(0, eq)] ??= []).push(value.slice(eq + 1));
  }
  return rules;
}

function main(argv: string[]): string {
  const { values, positionals } = parseCommandLine(argv, options);
  const [verb, id, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (!verb || !["add", "list", "rotate", "remove"].includes(verb)) throw new UsageError(verb ? `unknown command "${verb}"` : "name a command");
  const needsId = verb === "rotate" || verb === "remove";
  if (needsId && !id) throw new UsageError(`${verb} needs the source id`);
  if (!needsId && id) throw new UsageError(`unexpected argument "${id}"`);
  const addOnly = [
    values.kind,
    values.repo,
    values.service,
    values.header,
    values.audience,
    values.email,
    values.claim,
    values.issuer,
    values["jwks-url"],
  ];
  if (verb !== "add" && addOnly.some((v) => v !== undefined)) {
    throw new UsageError("--kind, --repo, --service, --header, --audience, --email, --claim, --issuer and --jwks-url are for add");
  }
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
    const issued = (r: { source: SourceRecord; secret?: string }) => {
      const url = `${base}${sourceHookPath(r.source.kind, r.source.id, r.secret)}`;
      if (values.json) return JSON.stringify({ source: toSourceJson(r.source, r.secret), secret: r.secret ?? null, url });
      if (r.secret === undefined) return `${describe(r.source)}\nurl     ${url}\n(no secret: the issuer's tokens prove the sender)`;
      const header = r.source.headerName ? `\nheader  ${r.source.headerName}` : "";
      return `id      ${r.source.id}\nkind    ${r.source.kind}\nsecret  ${r.secret}\nurl     ${url}${header}\n(the secret is shown only now)`;
    };
    switch (verb) {
      case "add":
        return issued(
          ops.add({
            kind: values.kind!,
            repos: values.repo!,
            services: values.service,
            header: values.header,
            audience: values.audience,
            email: values.email,
            claims: claimRules(values.claim),
            issuer: values.issuer,
            jwksUrl: values["jwks-url"],
          }),
        );
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

/** The source command (`npm run source -- …`, `deployer source …`); sets process.exitCode. */
export function runSourceCommand(argv: string[]): void {
  try {
    process.stdout.write(`${main(argv)}\n`);
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
}

if (isMainModule(import.meta.url)) runSourceCommand(process.argv.slice(2));
