import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSeed, seed } from '../../emulator/seeder.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { discoveryHarness } from './harness.js';

describe('discovery of 600 REST APIs', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
    // 600 APIs, one stage each; the first 12 on a usage plan, the other 588 on none
    await seed(emu.apiGateway(), generateSeed({ apis: 600, stages: ['prod'], withoutPlan: 588 }));
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it('fails the account-region as partial when GetRestApis answers the same position again (issue 15.6)', async () => {
    const h = await discoveryHarness(emu, { rateLimit: { ratePerSecond: 100, burst: 100 } });
    await h.engine.run(); // a complete catalog first: a stuck listing must remove none of it
    const before = (await h.catalog.listAll()).length;
    emu.proxy.setPagingFault({ operations: ['GetRestApis'] });
    emu.proxy.resetCalls();
    const { summary } = await h.engine.run();
    emu.proxy.setPagingFault(undefined);
    // Page 1 answers position p; the page at p answers p again: the reader stops there.
    expect(emu.proxy.calls.countOf('GetRestApis')).toBe(2);
    expect(summary.partial).toBe(true);
    expect(summary.accountRegions[0]).toMatchObject({ status: 'failed' });
    expect(summary.errors.map((e) => e.message).join(' ')).toMatch(/same page position twice/);
    expect(summary.counts.removed).toBe(0);
    expect(await h.catalog.listAll()).toHaveLength(before);
  });

  it('pages GetRestApis past 500 and reads stages only of APIs on a plan', async () => {
    const h = await discoveryHarness(emu, { rateLimit: { ratePerSecond: 100, burst: 100 } });
    emu.proxy.resetCalls();
    const { summary } = await h.engine.run();
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toEqual({
      GetRestApis: 2,
      GetUsagePlans: 1,
      GetStages: 12,
      GetExport: 12,
    });
    expect(summary.counts).toMatchObject({ discovered: 12, upserted: 12, skipped: 588 });
    expect(emu.proxy.calls.count({ outcome: 'rejected' })).toBe(0);
    expect(await h.catalog.listAll()).toHaveLength(12);
  });

  it('federates all 600 with acceptApiWithoutUsagePlan, each read once, without a 429 from a 50/s API Gateway', async () => {
    emu.proxy.setThrottle({ ratePerSecond: 50, burst: 40 });
    const h = await discoveryHarness(emu, {
      acceptApiWithoutUsagePlan: true,
      rateLimit: { ratePerSecond: 45, burst: 30 },
    });
    emu.proxy.resetCalls();
    emu.proxy.resetStats();
    const { summary } = await h.engine.run();
    const sent429 = emu.proxy.stats.throttle.sent429;
    emu.proxy.setThrottle(undefined);
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toEqual({
      GetRestApis: 2,
      GetUsagePlans: 1,
      GetStages: 600,
      GetExport: 600,
    });
    expect(sent429).toBe(0);
    expect(summary.throttles).toBe(0);
    expect(summary.counts).toMatchObject({ discovered: 600, upserted: 600, skipped: 0 });
    const ids = (await h.catalog.listAll()).map((a) => a.id);
    expect(new Set(ids).size).toBe(600);
  }, 120_000);

  it('slows down when API Gateway throttles a bucket set too high, and completes', async () => {
    emu.proxy.setThrottle({ ratePerSecond: 5, burst: 5 });
    const h = await discoveryHarness(
      emu,
      { rateLimit: { ratePerSecond: 50, burst: 50 } },
      { retry: { baseDelayMs: 50, maxDelayMs: 1000, maxAttempts: 8 } },
    );
    emu.proxy.resetStats();
    const { summary } = await h.engine.run({ full: true });
    const sent429 = emu.proxy.stats.throttle.sent429;
    emu.proxy.setThrottle(undefined);
    expect(sent429).toBeGreaterThan(0);
    expect(summary.throttles).toBe(sent429);
    expect(summary.partial).toBe(false);
    expect(summary.counts.discovered).toBe(12);
  }, 60_000);
});
