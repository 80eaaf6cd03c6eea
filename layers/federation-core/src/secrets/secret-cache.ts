import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ConfigError, toFederationError } from '../errors.js';

/** A secret's value and the Secrets Manager version it came from. */
export interface SecretVersion {
  readonly versionId: string;
  readonly value: string;
}

export interface SecretCacheOptions {
  /** How long the current version is trusted before it is read again (rotation picks up after this). Default 60 s. */
  readonly ttlMs?: number;
  /** Milliseconds clock, injectable for tests. */
  readonly now?: () => number;
}

interface Entry {
  readonly secret: SecretVersion;
  readonly fetchedAt: number;
}

/**
 * Reads Secrets Manager secrets and keeps them in memory: the current version (`AWSCURRENT`) for
 * `ttlMs`, so a rotation is picked up within that time, and any explicitly requested version for
 * the life of the container (versions never change). Concurrent callers share one request. Values
 * are never logged and never put into errors.
 */
export class SecretCache {
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly current = new Map<string, Entry>();
  private readonly versions = new Map<string, SecretVersion>();
  private readonly pending = new Map<string, Promise<SecretVersion>>();

  constructor(
    private readonly client: SecretsManagerClient,
    options: SecretCacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** The current version of `secretId`. */
  async getCurrent(secretId: string): Promise<SecretVersion> {
    const cached = this.current.get(secretId);
    if (cached && this.now() - cached.fetchedAt < this.ttlMs) return cached.secret;
    const secret = await this.fetch(secretId, undefined);
    this.current.set(secretId, { secret, fetchedAt: this.now() });
    return secret;
  }

  /** One specific version of `secretId` (for values derived under an older version). */
  async getVersion(secretId: string, versionId: string): Promise<SecretVersion> {
    const cached = this.versions.get(`${secretId}\u0000${versionId}`);
    if (cached) return cached;
    return this.fetch(secretId, versionId);
  }

  /** Forgets every cached value. */
  clear(): void {
    this.current.clear();
    this.versions.clear();
  }

  private fetch(secretId: string, versionId: string | undefined): Promise<SecretVersion> {
    const key = `${secretId}\u0000${versionId ?? ''}`;
    let request = this.pending.get(key);
    if (!request) {
      request = this.read(secretId, versionId).finally(() => this.pending.delete(key));
      this.pending.set(key, request);
    }
    return request;
  }

  private async read(secretId: string, versionId: string | undefined): Promise<SecretVersion> {
    let out: GetSecretValueCommandOutput;
    try {
      out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: versionId }));
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'ResourceNotFoundException') {
        throw new ConfigError(
          `Secret ${secretId}${versionId ? ` (version ${versionId})` : ''} does not exist: create it or fix the secret name in the configuration`,
          { cause: error },
        );
      }
      throw toFederationError(error, `GetSecretValue ${secretId}`);
    }
    if (typeof out.SecretString !== 'string' || out.SecretString.length === 0 || !out.VersionId) {
      throw new ConfigError(`Secret ${secretId} has no string value: expected a SecretString`);
    }
    const secret: SecretVersion = { versionId: out.VersionId, value: out.SecretString };
    this.versions.set(`${secretId}\u0000${out.VersionId}`, secret);
    return secret;
  }
}
