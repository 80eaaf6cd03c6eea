import { createHash, timingSafeEqual } from 'node:crypto';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError, toFederationError } from '../errors.js';

export interface TokenVerifierOptions {
  /** Reads the expected token (the Secrets Manager secret's value). */
  readonly loadToken: () => Promise<string>;
  /** How long a loaded token is reused; a rotated secret takes effect after at most this (default 60 s). */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/** The outcome of checking an `Authorization` header. */
export type TokenCheck = 'valid' | 'missing' | 'invalid';

/** Extracts the token of `Authorization: Bearer <token>` (scheme case-insensitive); undefined otherwise. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Reads a header case-insensitively from an API Gateway event's `headers`. */
export function headerValue(headers: Record<string, string | undefined> | null | undefined, name: string) {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/**
 * Constant-time comparison of two secrets: both are hashed first, so the comparison runs over equal
 * lengths and neither the content nor the length of the expected token leaks through timing.
 */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * Checks bearer tokens against the relay token, cached for `ttlMs` so a rotation takes effect
 * quickly without a Secrets Manager call per connection. Concurrent checks share one load.
 */
export class TokenVerifier {
  private cached?: { token: string; loadedAt: number };
  private pending?: Promise<string>;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: TokenVerifierOptions) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Checks an `Authorization` header value. Throws only when the expected token cannot be loaded. */
  async check(authorization: string | undefined | null): Promise<TokenCheck> {
    const presented = bearerToken(authorization);
    if (presented === undefined) return 'missing';
    const expected = await this.expected();
    return tokensEqual(presented, expected) ? 'valid' : 'invalid';
  }

  private async expected(): Promise<string> {
    const now = this.now();
    if (this.cached && now - this.cached.loadedAt < this.ttlMs) return this.cached.token;
    this.pending ??= this.options
      .loadToken()
      .then((token) => {
        if (!token) throw new ConfigError('The relay token secret is empty');
        this.cached = { token, loadedAt: this.now() };
        return token;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

/** Loads a plain-string secret from Secrets Manager (the relay token as the CDK app generates it). */
export function secretLoader(client: SecretsManagerClient, secretId: string): () => Promise<string> {
  return async () => {
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
      if (typeof out.SecretString !== 'string')
        throw new ConfigError(`Secret ${secretId} has no string value`);
      return out.SecretString;
    } catch (error) {
      throw toFederationError(error, `GetSecretValue ${secretId}`);
    }
  };
}

/** The IAM policy a REQUEST authorizer returns for API Gateway. */
export interface AuthorizerResult {
  readonly principalId: string;
  readonly policyDocument: {
    readonly Version: '2012-10-17';
    readonly Statement: readonly { Action: string; Effect: 'Allow' | 'Deny'; Resource: string }[];
  };
  readonly context?: Record<string, string | number | boolean>;
}

/** Allow or Deny `execute-api:Invoke` on `methodArn`. */
export function authorizerPolicy(
  effect: 'Allow' | 'Deny',
  methodArn: string,
  principalId = 'control-plane',
  context?: Record<string, string | number | boolean>,
): AuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: methodArn }],
    },
    ...(context ? { context } : {}),
  };
}
