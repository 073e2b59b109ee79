import { compileRepoPattern, parseExpiresIn, TokenInputError } from "../auth/tokens.js";
import type { SourceSecrets } from "../auth/source-secrets.js";
import { AppError } from "../domain/app-error.js";
import { isServiceRef, SERVICE_REF_RULE } from "../domain/service-ref.js";
import { DEFAULT_ECR_HEADER, isOidcKind, isSourceKind, secretUseOf, sourceKinds, type SourceKind } from "../domain/source.js";
import type { OidcRules, SourceRecord, SourceStore } from "../store/source-store.js";
import { checkOidcInput, type OidcInput } from "./oidc-source-input.js";

/**
 * Adding, rotating and revoking push sources: the same verbs for the API
 * (`/api/sources`) and the CLI (`npm run source`). The plain secret leaves
 * here once, in the answer to add or rotate, and is never stored as such.
 */

export interface SourceDeps {
  sources: SourceStore;
  secrets: SourceSecrets;
  dockerHubRegistry: string;
  now: () => number;
  newId: (prefix: string) => string;
}

export interface NewSourceInput extends OidcInput {
  kind: string;
  repos: string[];
  services?: string[];
  header?: string;
}

/** A grace longer than this is a second secret, not a rotation. */
const MAX_GRACE_S = 30 * 86_400;
export const DEFAULT_GRACE = "24h";

const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

const invalid = (message: string) => new AppError("VALIDATION_FAILED", message);

/** `24h`, `30m`, `7d`, or `0` for none → milliseconds. */
export function parseGrace(text: string): number {
  if (/^0[smhdw]?$/.test(text.trim())) return 0;
  let seconds: number;
  try {
    seconds = parseExpiresIn(text);
  } catch {
    throw invalid(`grace: expected a duration such as 30m, 24h or 7d (or 0), got ${JSON.stringify(text)}`);
  }
  if (seconds > MAX_GRACE_S) throw invalid("grace: at most 30d");
  return seconds * 1000;
}

function checkInput(input: NewSourceInput): { kind: SourceKind; headerName?: string; oidc?: OidcRules } {
  if (!isSourceKind(input.kind)) throw invalid(`kind: expected one of ${sourceKinds.join(", ")}, got ${JSON.stringify(input.kind)}`);
  if (input.repos.length === 0) throw invalid("repos: expected at least one repository pattern");
  if (input.repos.length > 100) throw invalid("repos: at most 100 patterns");
  if (input.services && (input.services.length === 0 || input.services.length > 100)) throw invalid("services: between 1 and 100 names");
  input.services?.forEach((name, i) => {
    if (!isServiceRef(name)) throw invalid(`services[${i}]: ${SERVICE_REF_RULE}`);
  });
  if (input.header !== undefined) {
    if (input.kind !== "ecr") throw invalid("header: only an ecr source names its header");
    if (!HEADER_NAME.test(input.header)) throw invalid("header: expected an HTTP header name (letters, digits and -)");
  }
  return {
    kind: input.kind,
    ...(input.kind === "ecr" ? { headerName: (input.header ?? DEFAULT_ECR_HEADER).toLowerCase() } : {}),
    ...checkOidcInput(input.kind, input),
  };
}

export function createSourceOperations(deps: SourceDeps) {
  function get(id: string): SourceRecord {
    const source = deps.sources.find(id);
    if (!source) throw new AppError("NOT_FOUND", `no source with id ${JSON.stringify(id)}`);
    return source;
  }

  return {
    get,
    list: () => deps.sources.list(),

    /** The new source, and its secret (shown this once) unless it is an OIDC source, which has none. */
    add(input: NewSourceInput): { source: SourceRecord; secret?: string } {
      const { kind, headerName, oidc } = checkInput(input);
      input.repos.forEach((pattern, i) => {
        try {
          compileRepoPattern(pattern, deps.dockerHubRegistry);
        } catch (err) {
          if (err instanceof TokenInputError) throw invalid(`repos[${i}]: ${err.message}`);
          throw err;
        }
      });
      const id = deps.newId("src");
      const secret = isOidcKind(kind) ? undefined : deps.secrets.generate();
      const source = deps.sources.insert({
        id,
        kind,
        repos: [...new Set(input.repos)],
        ...(input.services ? { services: [...new Set(input.services)] } : {}),
        ...(headerName ? { headerName } : {}),
        ...(secret === undefined ? { oidc } : { secret: deps.secrets.store(secret, secretUseOf(kind), id) }),
      });
      return { source, ...(secret === undefined ? {} : { secret }) };
    },

    rotate(id: string, graceMs: number): { source: SourceRecord; secret: string } {
      const current = get(id);
      if (isOidcKind(current.kind)) {
        throw new AppError("CONFLICT", `source ${id} is a ${current.kind} source: its issuer's tokens prove it, and it has no secret to rotate`);
      }
      if (current.revokedAt !== null) throw new AppError("CONFLICT", `source ${id} is revoked; add a new one`);
      const secret = deps.secrets.generate();
      const source = deps.sources.rotate(id, deps.secrets.store(secret, secretUseOf(current.kind), id), deps.now() + graceMs);
      if (!source) throw new AppError("CONFLICT", `source ${id} is revoked; add a new one`);
      return { source, secret };
    },

    /** Idempotent: revoking a revoked source answers it as it is. */
    remove(id: string): SourceRecord {
      const current = get(id);
      if (current.revokedAt !== null) return current;
      return deps.sources.revoke(id)!;
    },
  };
}

export type SourceOperations = ReturnType<typeof createSourceOperations>;
