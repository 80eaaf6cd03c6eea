import { CreateApiKeyCommand, GetApiKeysCommand, GetRestApisCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { API_KEY_OPERATION_QUOTAS, type FaultConfig } from '../../emulator/proxy.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

/** A request the proxy can identify (SigV4 scope) without a valid signature: faults answer before moto. */
function fakeSigned(emu: Emulator, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${emu.endpoint}${path}`, {
    ...init,
    headers: {
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/apigateway/aws4_request, SignedHeaders=host, Signature=00',
      ...(init.headers ?? {}),
    },
  });
}

describe('fault injection', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
  });

  const config: FaultConfig = {
    seed: 1234,
    rates: {
      throttle429: 0.1,
      throttle429RetryAfter: 0.05,
      error500: 0.05,
      error502: 0.05,
      error503: 0.05,
      reset: 0.05,
    },
  };

  async function outcomes(n: number): Promise<string[]> {
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      try {
        await client.send(new GetRestApisCommand({}));
        seen.push('ok');
      } catch (error) {
        const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
        seen.push(`${e.$metadata?.httpStatusCode ?? 'net'}:${e.name}`);
      }
    }
    return seen;
  }

  it('a seed reproduces the same faults; another seed does not', async () => {
    emu.proxy.setFaults(config);
    const first = await outcomes(150);
    const stats = emu.proxy.stats.faults;
    emu.proxy.resetAll();
    emu.proxy.setFaults(config);
    const second = await outcomes(150);
    expect(second).toEqual(first);
    emu.proxy.setFaults({ ...config, seed: 99 });
    const third = await outcomes(150);
    expect(third).not.toEqual(first);

    const failed = first.filter((o) => o !== 'ok').length;
    expect(failed).toBeGreaterThan(150 * 0.2);
    expect(failed).toBeLessThan(150 * 0.55);
    expect(stats.total).toBe(failed);
    expect(stats.throttle429 + stats.throttle429RetryAfter).toBe(
      first.filter((o) => o.startsWith('429:')).length,
    );
    expect(stats.reset).toBeGreaterThan(0);
    expect(first.filter((o) => o === '429:TooManyRequestsException').length).toBe(
      stats.throttle429 + stats.throttle429RetryAfter,
    );
    expect(first).toContain('503:ServiceUnavailableException');
  });

  it('a faulted write never reaches moto; other operations are untouched', async () => {
    emu.proxy.setFaults({ seed: 7, rates: { error500: 1 }, operations: ['CreateApiKey'] });
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 3 });
    for (let i = 0; i < 5; i++) {
      await expect(
        client.send(new CreateApiKeyCommand({ name: `k${i}`, enabled: true })),
      ).rejects.toMatchObject({
        $metadata: { httpStatusCode: 500 },
      });
    }
    await client.send(new GetRestApisCommand({}));
    const keys = await emu.apiGateway().send(new GetApiKeysCommand({}));
    expect(keys.items ?? []).toHaveLength(0);
    expect(emu.proxy.stats.faults.error500).toBe(15); // 5 calls x 3 SDK attempts
    expect(emu.proxy.calls.count({ operation: 'CreateApiKey', outcome: 'forwarded' })).toBe(0);
  });

  it('429 responses look like API Gateway, with and without Retry-After', async () => {
    emu.proxy.setFaults({ seed: 1, rates: { throttle429RetryAfter: 1 } });
    const withRetryAfter = await fakeSigned(emu, '/restapis');
    expect(withRetryAfter.status).toBe(429);
    expect(withRetryAfter.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
    expect(withRetryAfter.headers.get('retry-after')).toBe('1');
    expect(await withRetryAfter.json()).toEqual({ message: 'Too Many Requests' });

    emu.proxy.setFaults({ seed: 1, rates: { throttle429: 1 } });
    const without = await fakeSigned(emu, '/restapis');
    expect(without.status).toBe(429);
    expect(without.headers.get('retry-after')).toBeNull();

    emu.proxy.setFaults({ seed: 1, rates: { reset: 1 } });
    await expect(fakeSigned(emu, '/restapis')).rejects.toThrow();
    expect(emu.proxy.stats.faults.reset).toBe(1);
  });

  it("answers a write with API Gateway's 409 concurrent modification, and nothing reaches moto", async () => {
    emu.proxy.setFaults({ seed: 1, rates: { conflict409: 1 }, operations: ['CreateApiKey'] });
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    const error = await client
      .send(new CreateApiKeyCommand({ name: 'k', value: 'Collide0123456789abcdef', enabled: true }))
      .then(
        () => undefined,
        (e: unknown) => e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } },
      );
    expect(error).toMatchObject({
      name: 'ConflictException',
      message: 'Unable to complete operation due to concurrent modification. Please try again later.',
      $metadata: { httpStatusCode: 409 },
    });
    expect(emu.proxy.stats.faults.conflict409).toBe(1);
    // Other operations are not affected, and the failed write created nothing.
    expect((await client.send(new GetApiKeysCommand({}))).items ?? []).toEqual([]);
  });

  it('adds latency', async () => {
    emu.proxy.setFaults({ seed: 3, rates: {}, latencyMs: 150 });
    const client = emu.apiGateway({ via: 'proxy' });
    const started = performance.now();
    await client.send(new GetRestApisCommand({}));
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(emu.proxy.stats.faults.delayed).toBe(1);
  });

  it('refuses rates that sum above 1', () => {
    expect(() => emu.proxy.setFaults({ seed: 1, rates: { error500: 0.6, error503: 0.6 } })).toThrow(/sum/);
  });
});

describe('token-bucket throttle per account-region', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
  });

  it('answers 429 TooManyRequestsException once the bucket is empty, per account-region', async () => {
    emu.proxy.setThrottle({ ratePerSecond: 2, burst: 10 });
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    // Bounds are computed from the measured time, so a loaded machine cannot make the test flaky:
    // at most the burst plus what refilled while the requests were in flight.
    const tokensBy = (since: number) => Math.ceil((2 * (Date.now() - since)) / 1000) + 1;
    const start = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => client.send(new GetRestApisCommand({}))),
    );
    const burstBound = 10 + tokensBy(start);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const throttled = results.filter(
      (r) =>
        r.status === 'rejected' &&
        (r.reason as { name?: string; $metadata?: { httpStatusCode?: number } }).name ===
          'TooManyRequestsException' &&
        (r.reason as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 429,
    ).length;
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(ok).toBeLessThanOrEqual(burstBound);
    expect(ok + throttled).toBe(30);

    // another region has its own bucket
    await emu
      .apiGateway({ via: 'proxy', region: 'eu-west-1', maxAttempts: 1 })
      .send(new GetRestApisCommand({}));

    const stats = emu.proxy.stats.throttle;
    expect(stats.sent429).toBe(throttled);
    expect(stats.byAccountRegion['123456789012/us-east-1']?.sent429).toBe(throttled);
    expect(stats.byAccountRegion['123456789012/eu-west-1']).toMatchObject({ sent429: 0, admitted: 1 });
    expect(stats.peakSustainedRate).toBeGreaterThanOrEqual(30 / 5);
    expect(emu.proxy.calls.count({ outcome: 'throttled' })).toBe(throttled);

    // the bucket refills at ratePerSecond
    await new Promise((r) => setTimeout(r, 1000));
    const refill = await Promise.allSettled(
      Array.from({ length: 10 }, () => client.send(new GetRestApisCommand({}))),
    );
    const refilled = refill.filter((r) => r.status === 'fulfilled').length;
    expect(refilled).toBeGreaterThanOrEqual(2);
    expect(refilled).toBeLessThanOrEqual(tokensBy(start) + 10 - ok);
  });

  it('gives CreateApiKey its own 5 requests/s quota inside the account-region budget', async () => {
    emu.proxy.setThrottle({ ratePerSecond: 10, burst: 40, operations: API_KEY_OPERATION_QUOTAS });
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => client.send(new CreateApiKeyCommand({ name: `k${i}` }))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    // The account bucket (burst 40) admits all ten; the key quota (5) answers the rest 429.
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok).toBeLessThan(10);
    expect(emu.proxy.stats.throttle.sent429ByOperation).toEqual({ CreateApiKey: 10 - ok });
    // Other operations are only limited by the account's bucket.
    const reads = await Promise.allSettled(
      Array.from({ length: 10 }, () => client.send(new GetRestApisCommand({}))),
    );
    expect(reads.every((r) => r.status === 'fulfilled')).toBe(true);
  });

  it('a client that paces itself below the rate is never throttled', async () => {
    emu.proxy.setThrottle({ ratePerSecond: 20, burst: 5, sustainWindowMs: 1000 });
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    for (let i = 0; i < 20; i++) {
      await client.send(new GetRestApisCommand({}));
      await new Promise((r) => setTimeout(r, 60));
    }
    const stats = emu.proxy.stats.throttle;
    expect(stats.sent429).toBe(0);
    expect(stats.admitted).toBe(20);
    expect(stats.peakSustainedRate).toBeLessThanOrEqual(20);
  });
});
