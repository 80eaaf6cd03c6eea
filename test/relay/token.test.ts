import { describe, expect, it } from 'vitest';
import {
  authorizerPolicy,
  bearerToken,
  headerValue,
  TokenVerifier,
  tokensEqual,
} from '../../layers/federation-core/src/index.js';

describe('bearerToken', () => {
  it('extracts the token of a Bearer header, scheme case-insensitive', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
  });
  it('rejects other schemes, empty tokens and absent headers', () => {
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken('abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('headerValue', () => {
  it('finds a header whatever its case', () => {
    expect(headerValue({ authorization: 'x' }, 'Authorization')).toBe('x');
    expect(headerValue(undefined, 'Authorization')).toBeUndefined();
  });
});

describe('tokensEqual', () => {
  it('compares tokens of different lengths without throwing', () => {
    expect(tokensEqual('a', 'a-much-longer-token')).toBe(false);
    expect(tokensEqual('same', 'same')).toBe(true);
  });
});

describe('TokenVerifier', () => {
  it('reuses the loaded token within the TTL and reloads it after, so a rotation takes effect', async () => {
    let now = 0;
    let secret = 'first-token';
    let loads = 0;
    const verifier = new TokenVerifier({
      loadToken: async () => {
        loads++;
        return secret;
      },
      ttlMs: 60_000,
      now: () => now,
    });
    expect(await verifier.check('Bearer first-token')).toBe('valid');
    secret = 'second-token';
    now = 30_000;
    expect(await verifier.check('Bearer first-token')).toBe('valid');
    expect(loads).toBe(1);
    now = 61_000;
    expect(await verifier.check('Bearer first-token')).toBe('invalid');
    expect(await verifier.check('Bearer second-token')).toBe('valid');
    expect(loads).toBe(2);
  });

  it('reports a missing header without loading the secret', async () => {
    let loads = 0;
    const verifier = new TokenVerifier({
      loadToken: async () => {
        loads++;
        return 't';
      },
    });
    expect(await verifier.check(undefined)).toBe('missing');
    expect(loads).toBe(0);
  });

  it('shares one load between concurrent checks', async () => {
    let loads = 0;
    const verifier = new TokenVerifier({
      loadToken: async () => {
        loads++;
        await new Promise((r) => setTimeout(r, 10));
        return 'tok';
      },
    });
    const results = await Promise.all(Array.from({ length: 20 }, () => verifier.check('Bearer tok')));
    expect(results.every((r) => r === 'valid')).toBe(true);
    expect(loads).toBe(1);
  });

  it('fails when the secret is empty', async () => {
    const verifier = new TokenVerifier({ loadToken: async () => '' });
    await expect(verifier.check('Bearer x')).rejects.toThrow(/empty/);
  });
});

describe('authorizerPolicy', () => {
  it('allows or denies execute-api:Invoke on the method ARN', () => {
    const arn = 'arn:aws:execute-api:us-east-1:123456789012:abc/live/$connect';
    expect(authorizerPolicy('Deny', arn).policyDocument.Statement).toEqual([
      { Action: 'execute-api:Invoke', Effect: 'Deny', Resource: arn },
    ]);
  });
});
