import { HelpRequested, isMainModule, parseCommandLine, UsageError } from "./command-line.js";
import { createTokenService, parseScopes, TokenInputError } from "../auth/tokens.js";
import { loadConfig } from "../config/config.js";
import { resolveSecret } from "../secret.js";

/**
 * `npm run token -- webhook|api ...`: signs a token with the server's key.
 * stdout carries the token and nothing else, so `TOKEN=$(...)` works;
 * everything meant for a human goes to stderr.
 */

const USAGE = `usage:
  npm run -s token -- webhook --repo REPO [--repo REPO2]... [--service NAME]... [--sub NAME] [--expires 90d] [--json]
  npm run -s token -- api --scope "deployments:read deployments:write" [--sub NAME] [--expires 30d] [--json]

  --repo     repository pattern the token may deploy, read like an image name:
             acme/web (Docker Hub), 127.0.0.1:5000/acme/*  (* stays inside one path segment)
  --service  limit the token to these swarm services (default: any service the repos reach)
  --scope    space-separated: deployments:read, deployments:write, sources:admin, database:backup
  --sub      who the token speaks for, recorded as requestedBy (default: webhook / api)
  --expires  lifetime such as 30m, 12h, 90d (default: no expiry)
  --json     print {"token", "kind", "sub", "expiresAt", ...its claims} on one line instead of the bare token

The key is DEPLOYER_SECRET, DEPLOYER_SECRET_FILE, or the one generated beside DEPLOYER_DB.
`;

const options = {
  repo: { type: "string", multiple: true },
  service: { type: "string", multiple: true },
  scope: { type: "string", multiple: true },
  sub: { type: "string" },
  expires: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

async function main(argv: string[]): Promise<string> {
  const { values, positionals } = parseCommandLine(argv, options);
  const [kind, ...extra] = positionals;
  if (kind !== "webhook" && kind !== "api") throw new UsageError(kind ? `unknown token kind "${kind}"` : "name the token kind: webhook or api");
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);

  const config = loadConfig(process.env);
  const tokens = (secret: string) => createTokenService({ secret, dockerHubRegistry: config.registry.dockerHub });
  let sign: (secret: string) => Promise<string>;
  if (kind === "webhook") {
    if (!values.repo?.length) throw new UsageError("webhook tokens need at least one --repo");
    if (values.scope) throw new UsageError("--scope is for api tokens");
    const input = { sub: values.sub ?? "webhook", repos: values.repo, services: values.service, expiresIn: values.expires };
    sign = (secret) => tokens(secret).signWebhookToken(input);
  } else {
    if (!values.scope?.length) throw new UsageError('api tokens need --scope "deployments:read deployments:write"');
    if (values.repo || values.service) throw new UsageError("--repo and --service are for webhook tokens");
    const input = { sub: values.sub ?? "api", scopes: parseScopes(values.scope.join(" ")), expiresIn: values.expires };
    sign = (secret) => tokens(secret).signApiToken(input);
  }
  // A dry run with a throwaway key checks patterns, services and --expires first,
  // so a typo fails before a key is read or ./data/secret is generated.
  await sign("x".repeat(32));

  const resolved = resolveSecret(config, { generate: true });
  if (resolved.source === "generated") {
    process.stderr.write(`token: generated a new signing key at ${resolved.path}; the server reads it from there\n`);
  }
  const token = await sign(resolved.secret);
  if (!values.json) return token;
  // Its claims as the server reads them.
  const signer = tokens(resolved.secret);
  const claims = kind === "webhook" ? await signer.verifyWebhookToken(token) : await signer.verifyApiToken(token);
  return JSON.stringify({
    token,
    kind,
    sub: claims.sub,
    expiresAt: claims.exp === undefined ? null : new Date(claims.exp * 1000).toISOString(),
    ...("repos" in claims ? { repos: claims.repos, services: claims.services ?? null } : { scopes: claims.scopes }),
  });
}

/** The token command (`npm run token -- …`, `deployer token …`); sets process.exitCode. */
export async function runTokenCommand(argv: string[]): Promise<void> {
  try {
    process.stdout.write(`${await main(argv)}\n`);
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(USAGE);
    } else {
      process.exitCode = 2;
      // ConfigError and resolveSecret's errors (unreadable or short key file) are configuration problems: exit 2 like the server.
      if ((err as Error).message) process.stderr.write(`token: ${(err as Error).message}\n`);
      if (err instanceof UsageError || err instanceof TokenInputError) process.stderr.write(USAGE);
    }
  }
}

if (isMainModule(import.meta.url)) await runTokenCommand(process.argv.slice(2));
