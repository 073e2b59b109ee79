import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { onTestFinished } from "vitest";

/**
 * A local OIDC issuer: real RS256 keys, their JWKS served over HTTP on
 * 127.0.0.1 (`/.well-known/jwks`, GitHub's layout), tokens signed with
 * them. It counts the JWKS requests, can rotate its key (serving the new one
 * alone, or both), hang, or stop answering altogether. Stopped when the test ends.
 */

export interface IssuerKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function newKey(kid: string): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

export class OidcIssuer {
  /** JWKS requests answered so far. */
  fetches = 0;
  /** JWKS requests answered 500 while `failing`. */
  failedFetches = 0;
  failing = false;
  private served: IssuerKey[];
  private hanging = false;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    public key: IssuerKey,
  ) {
    this.served = [key];
  }

  static async start(): Promise<OidcIssuer> {
    const key = await newKey("key-1");
    let issuer: OidcIssuer | undefined;
    const server = createServer((req, res) => {
      if (req.url !== "/.well-known/jwks" || !issuer) return void res.writeHead(404).end();
      if (issuer.hanging) return; // never answered: the verifier's timeout ends it
      if (issuer.failing) {
        issuer.failedFetches++;
        return void res.writeHead(500).end("the issuer is having a bad day");
      }
      issuer.fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: issuer.served.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    issuer = new OidcIssuer(server, `http://127.0.0.1:${port}`, key);
    onTestFinished(() => issuer.stop());
    return issuer;
  }

  get jwksUrl(): string {
    return `${this.url}/.well-known/jwks`;
  }

  /** A new signing key; the JWKS serves it alone, or beside the old one with `keepOld`. */
  async rotate(kid: string, opts: { keepOld?: boolean } = {}): Promise<IssuerKey> {
    const next = await newKey(kid);
    this.served = opts.keepOld ? [...this.served, next] : [next];
    this.key = next;
    return next;
  }

  hang(): void {
    this.hanging = true;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * A token valid for an hour from `nowMs` (the server's clock; `claims.iat`
   * and `claims.exp` win), from this
   * issuer unless `claims.iss` says otherwise, signed with the current key
   * (or `key`), its kid in the header.
   */
  sign(claims: JWTPayload, nowMs: number, opts: { key?: IssuerKey; kid?: string | null; expiresInS?: number } = {}): Promise<string> {
    const key = opts.key ?? this.key;
    const iat = claims.iat ?? Math.floor(nowMs / 1000);
    const exp = claims.exp ?? iat + (opts.expiresInS ?? 3600);
    const kid = opts.kid === null ? undefined : (opts.kid ?? key.kid);
    return new SignJWT({ iss: this.url, ...claims })
      .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(kid ? { kid } : {}) })
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(key.privateKey);
  }
}

/** A JWT with `alg: none`: a header and payload, no signature. */
export function unsignedToken(claims: JWTPayload): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
}
