import type { Logger } from "pino";
import { createCredentialStore, type RegistriesFileEntry, type RegistryCredentialEntry } from "./credentials.js";
import { createRegistryClient, type RegistryClient } from "./registry-client.js";
import type { RegistryCredentials } from "./registry-port.js";

export interface RegistryAccessOptions {
  /** REGISTRY_USER's login and the docker config's: what a service without a label uses. */
  entries: RegistryCredentialEntry[];
  /** REGISTRIES_FILE lines, for services labelled `shepherd.auth.config=<id>`. */
  fileEntries: RegistriesFileEntry[];
  insecureRegistries: string[];
  fallbackToHttp: boolean;
  /** WITH_REGISTRY_AUTH: pass the login to the nodes with each update. */
  withRegistryAuth: boolean;
  log: Logger;
}

/**
 * The value of X-Registry-Auth: JSON in URL-safe base64 *with* its `=`
 * padding, as the docker CLI sends it (Go's base64.URLEncoding). The engine
 * stores it in the service spec and each node decodes it with that padded
 * decoder before it pulls; without the padding the last bytes of the JSON are
 * lost there, the login reads as invalid and the node pulls anonymously.
 */
export function registryAuthHeader(credentials: RegistryCredentials, registry: string): string {
  const json = JSON.stringify({ username: credentials.username, password: credentials.password, serveraddress: registry });
  return Buffer.from(json).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * The registry clients and node credentials, per login. A service labelled
 * `shepherd.auth.config=<id>` gets the REGISTRIES_FILE lines of that id and
 * no others, as `docker --config <id>` gave it in Shepherd; an id the file
 * does not name means no login (logged once), as an empty docker config did.
 */
export function createRegistryAccess(opts: RegistryAccessOptions) {
  const stores = new Map<string | undefined, (registry: string) => RegistryCredentials | undefined>();
  stores.set(undefined, createCredentialStore(opts.entries));
  for (const id of new Set(opts.fileEntries.map((e) => e.id))) {
    stores.set(id, createCredentialStore(opts.fileEntries.filter((e) => e.id === id)));
  }
  const warned = new Set<string>();
  const credentialsOf = (authConfig?: string) => {
    const store = stores.get(authConfig);
    if (store) return store;
    if (authConfig !== undefined && !warned.has(authConfig)) {
      warned.add(authConfig);
      opts.log.warn({ authConfig }, "a service's shepherd.auth.config names an id REGISTRIES_FILE does not have; it gets no login");
    }
    return () => undefined;
  };
  const clients = new Map<string | undefined, RegistryClient>();
  const clientFor = (authConfig?: string): RegistryClient => {
    let client = clients.get(authConfig);
    if (!client) {
      client = createRegistryClient({
        insecureRegistries: opts.insecureRegistries,
        fallbackToHttp: opts.fallbackToHttp,
        credentialsFor: credentialsOf(authConfig),
      });
      clients.set(authConfig, client);
    }
    return client;
  };
  return {
    registry: clientFor(undefined),
    registryFor: (authConfig: string) => clientFor(authConfig),
    registryAuthFor: opts.withRegistryAuth
      ? (registry: string, authConfig?: string) => {
          const credentials = credentialsOf(authConfig)(registry);
          return credentials ? registryAuthHeader(credentials, registry) : undefined;
        }
      : undefined,
  };
}
