import { createHmac } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { SecretCache } from '../secrets/secret-cache.js';

/** Length of a derived API key value: 40 base62 characters (about 238 bits), like keys AWS generates. */
export const DERIVED_KEY_LENGTH = 40;
/** A secret shorter than this is refused: it would make derived keys guessable. */
export const MIN_SECRET_LENGTH = 32;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * One version of the agent's HMAC secret, able to derive API key values and request digests.
 * Nothing it returns can be turned back into the secret.
 */
export interface KeyMaterial {
  /** Secrets Manager version id: stored on the subscription so a repeat uses the same version. */
  readonly versionId: string;
  /**
   * The API key value of a subscription: base62 of HMAC-SHA256(secret, "apikey:v1:<id>:<generation>"),
   * cut to 40 characters (API Gateway takes 20–128 alphanumeric characters).
   */
  deriveApiKey(subscriptionId: string, generation: number): string;
  /** Hex HMAC-SHA256(secret, "request:v1:<canonical>"): a request hash that reveals nothing. */
  digest(canonical: string): string;
}

/** Hands out the current key material and older versions (for subscriptions made under them). */
export interface KeyMaterialProvider {
  current(): Promise<KeyMaterial>;
  version(versionId: string): Promise<KeyMaterial>;
}

function base62(bytes: Uint8Array): string {
  let n = BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(43, '0');
}

/** Key material over a secret value (at least 32 characters). */
export function keyMaterial(versionId: string, secret: string): KeyMaterial {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(
      `The API key secret (version ${versionId}) is too short: expected at least ${MIN_SECRET_LENGTH} characters`,
    );
  }
  const hmac = (input: string) => createHmac('sha256', secret).update(input, 'utf8').digest();
  return {
    versionId,
    deriveApiKey: (subscriptionId, generation) =>
      base62(hmac(`apikey:v1:${subscriptionId}:${generation}`)).slice(0, DERIVED_KEY_LENGTH),
    digest: (canonical) => hmac(`request:v1:${canonical}`).toString('hex'),
  };
}

/** Key material from a Secrets Manager secret through the (TTL) secret cache. */
export class SecretKeyMaterialProvider implements KeyMaterialProvider {
  constructor(
    private readonly secrets: SecretCache,
    private readonly secretName: string,
  ) {}

  async current(): Promise<KeyMaterial> {
    const secret = await this.secrets.getCurrent(this.secretName);
    return keyMaterial(secret.versionId, secret.value);
  }

  async version(versionId: string): Promise<KeyMaterial> {
    const secret = await this.secrets.getVersion(this.secretName, versionId);
    return keyMaterial(secret.versionId, secret.value);
  }
}
