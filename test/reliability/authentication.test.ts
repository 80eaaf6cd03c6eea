/**
 * Authentication of the relay: who gets a connection. Through the WebSocket emulator (API Gateway's
 * `$connect` authorizer flow) with the real authorizer handler and the token in Secrets Manager, and a
 * unit test of the comparison itself (hashes on both sides, `timingSafeEqual` on equal lengths).
 */
import * as crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TokenVerifier, tokensEqual } from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness } from '../support/relay-harness.js';
import { SecretsHygiene, scanAgent } from './hygiene.js';
import { ScenarioReport } from './report.js';

// Pass-through spies: the comparison's primitives are observed, not replaced.
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return {
    ...original,
    createHash: vi.fn(original.createHash),
    timingSafeEqual: vi.fn(original.timingSafeEqual),
  };
});

const TTL_MS = 60_000;

/** Outcome of an upgrade: 'open', or the HTTP status that refused it. */
async function attempt(agent: RelayHarness, token: string | null, headers?: Record<string, string>) {
  try {
    const connection = await agent.connect(token, headers);
    await connection.waitFor((m) => m.event === 'hello');
    await connection.close();
    return 'open' as const;
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === undefined) throw error;
    return status;
  }
}

describe('relay authentication', () => {
  const report = new ScenarioReport('authentication');
  const hygiene = new SecretsHygiene();
  let emu: Emulator;
  let agent: RelayHarness;
  let clock = 1_000_000;

  const expectOutcome = async (
    what: string,
    token: string | null,
    expected: 'open' | 'refused' | number,
    headers?: Record<string, string>,
  ) => {
    report.add({ operationsAttempted: 1, hostileInputs: expected === 'open' ? 0 : 1 });
    const outcome = await attempt(agent, token, headers);
    // 'refused': 401 (no header) or 403 (a credential that is not the token) — no connection either way.
    if (expected === 'refused') expect([401, 403], what).toContain(outcome);
    else expect(outcome, what).toBe(expected);
    report.add({ survived: 1 });
  };

  beforeAll(async () => {
    hygiene.start();
    emu = await startEmulator();
    agent = await startRelayHarness(emu, { tokenTtlMs: TTL_MS, now: () => clock });
    hygiene.secret(agent.token);
  });
  afterAll(async () => {
    await agent?.stop();
    await emu?.stop();
    hygiene.stop();
    report.flush();
  });

  it('accepts the token from Secrets Manager and greets the connection', async () => {
    await expectOutcome('the right token', agent.token, 'open');
  });

  it('refuses a missing header with 401 and any other credential with 403, writing no connection record', async () => {
    const token = agent.token;
    // No header: API Gateway answers 401 itself (identity source). Any header reaches the authorizer,
    // which answers Deny (403) without a function error, so a client's mistake never trips an alarm.
    await expectOutcome('no Authorization header', null, 401);
    await expectOutcome('empty bearer', '', 403);
    await expectOutcome('another scheme', null, 403, { Authorization: `Basic ${token}` });
    await expectOutcome(
      'a wrong token of the same length',
      `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
      403,
    );
    await expectOutcome('one character short', token.slice(0, -1), 403);
    await expectOutcome('one character long', `${token}A`, 403);
    await expectOutcome('a prefix', token.slice(0, 8), 403);
    await expectOutcome('a 4 KB token', 'x'.repeat(4096), 403);
    await expectOutcome('the token twice', `${token}${token}`, 403);
    await expectOutcome(
      'the token in another case',
      token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(),
      403,
    );
    await agent.idle();
    expect(await agent.relay.connections.count()).toBe(0);
  });

  it('treats whitespace around the credential as HTTP does, and whitespace inside it as a wrong token', async () => {
    const token = agent.token;
    // HTTP trims optional whitespace around a header value, and RFC 7235 allows several spaces after the scheme.
    await expectOutcome('padded right token', null, 'open', { Authorization: `Bearer    ${token}   ` });
    // Whitespace inside the credential: the token is not the token.
    await expectOutcome('space inside', `${token.slice(0, 10)} ${token.slice(10)}`, 'refused');
    await expectOutcome('tab inside', `${token.slice(0, 10)}\t${token.slice(10)}`, 'refused');
    await expectOutcome('a wrong token, padded', `  ${token.slice(1)}  `, 403);
    // The authorizer event directly (what API Gateway would pass on): no padding variant lets a wrong token in.
    const methodArn = 'arn:aws:execute-api:us-east-1:123456789012:abc/local/$connect';
    const effect = async (authorization: string) => {
      report.add({ operationsAttempted: 1, hostileInputs: 1 });
      try {
        const result = await agent.handlers.authorizer({
          type: 'REQUEST',
          methodArn,
          headers: { Authorization: authorization },
        } as never);
        return result.policyDocument.Statement[0]?.Effect;
      } catch (error) {
        hygiene.error(error);
        return (error as Error).message;
      } finally {
        report.add({ survived: 1 });
      }
    };
    for (const pad of [' ', '\t', '\n', '\r\n', '\u00a0', '\u2003']) {
      expect(await effect(`Bearer ${pad}${token.slice(1)}${pad}`), JSON.stringify(pad)).not.toBe('Allow');
      expect(await effect(`Bearer ${token}${pad}x`), JSON.stringify(pad)).not.toBe('Allow');
      expect(await effect(`Bearer ${token}\u0000${pad}`), JSON.stringify(pad)).not.toBe('Allow');
    }
    expect(await effect(`Bearer ${token}`)).toBe('Allow');
  });

  it('refuses the old token and accepts the new one once the cache TTL has passed after a rotation', async () => {
    const old = agent.token;
    await expectOutcome('before rotation', old, 'open');
    const rotated = await agent.rotateToken();
    hygiene.secret(rotated);
    // Within the TTL the verifier still holds the old token (rotation takes effect within ttlMs).
    clock += TTL_MS - 1;
    await expectOutcome('old token, within the TTL', old, 'open');
    clock += 2;
    await expectOutcome('old token after the TTL', old, 403);
    await expectOutcome('new token after the TTL', rotated, 'open');
    await expectOutcome('old token again', old, 403);
  });

  it('compares in constant time: both sides hashed to 32 bytes, timingSafeEqual on equal lengths', async () => {
    const createHash = vi.mocked(crypto.createHash);
    const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);
    const expected = 'expected-token-0123456789abcdef0123456789';
    for (const presented of ['', 'x', expected.slice(0, -1), expected, `${expected}x`, 'y'.repeat(10_000)]) {
      createHash.mockClear();
      timingSafeEqual.mockClear();
      expect(tokensEqual(presented, expected)).toBe(presented === expected);
      expect(createHash.mock.calls.map((c) => c[0])).toEqual(['sha256', 'sha256']);
      expect(timingSafeEqual).toHaveBeenCalledTimes(1);
      const [a, b] = timingSafeEqual.mock.calls[0] as [Uint8Array, Uint8Array];
      expect([a.byteLength, b.byteLength]).toEqual([32, 32]);
    }
    // The verifier itself always goes through the comparison, whatever the presented length.
    const verifier = new TokenVerifier({ loadToken: async () => expected });
    for (const presented of ['a', expected, 'b'.repeat(500)]) {
      timingSafeEqual.mockClear();
      await verifier.check(`Bearer ${presented}`);
      expect(timingSafeEqual).toHaveBeenCalledTimes(1);
    }
  });

  it('leaks no relay token into logs, ledger items or error messages', async () => {
    const leaks = await scanAgent(agent, hygiene, report);
    expect(hygiene.secretCount).toBeGreaterThanOrEqual(2);
    expect(hygiene.lines().length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});
