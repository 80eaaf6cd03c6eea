import { describe, expect, it } from 'vitest';
import { scenarioSeeds } from '../../bench/env.js';
import { approxBytes, emptyTally, recordCapacity } from '../../bench/lib/capacity.js';
import {
  containerMonthlyCost,
  PRICES,
  readUnits,
  runsPerMonth,
  serverlessMonthlyCost,
  writeUnits,
} from '../../bench/lib/cost.js';
import {
  idealSeconds,
  minimumFirstRun,
  minimumRerun,
  naiveRun,
  pages,
  shapeOf,
} from '../../bench/lib/minimum.js';
import { figure, markdownTable, resultStamp } from '../../bench/lib/report.js';
import { median, percentile } from '../../bench/lib/stats.js';
import { generateSeed } from '../../emulator/seeder.js';

describe('theoretical minimum', () => {
  it('counts one listing call per 500 items, at least one, and one call per federable API and stage', () => {
    expect(pages(0)).toBe(1);
    expect(pages(500)).toBe(1);
    expect(pages(501)).toBe(2);
    // 500 APIs × 2 stages, the last 50 on no plan: 900 plans, 450 federable APIs, 900 federable stages
    const shape = shapeOf(generateSeed({ apis: 500, withoutPlan: 50 }));
    expect(shape).toEqual({
      apis: 500,
      usagePlans: 900,
      federableApis: 450,
      federableStages: 900,
      deployedStages: 1000,
    });
    expect(minimumFirstRun(shape)).toEqual({
      GetRestApis: 1,
      GetUsagePlans: 2,
      GetStages: 450,
      GetExport: 900,
      total: 1353,
    });
    expect(minimumRerun(shape, 45).GetExport).toBe(45);
    expect(naiveRun(shape)).toEqual({
      GetRestApis: 20,
      GetUsagePlans: 36,
      GetStages: 500,
      GetExport: 900,
      total: 1456,
    });
  });

  it('splits a scenario over four account-regions without losing an API', () => {
    const seeds = scenarioSeeds(50);
    expect(seeds.map((s) => s.apis.length)).toEqual([13, 13, 12, 12]);
    expect(new Set(seeds.flatMap((s) => s.apis.map((a) => a.name))).size).toBe(50);
  });

  it('paces what exceeds the burst at the rate, slowest account-region first, plus the dependent round trips', () => {
    const limit = { ratePerSecond: 10, burst: 40 };
    expect(idealSeconds([1353, 1353, 1000, 10], limit)).toBeCloseTo(131.3, 5);
    expect(idealSeconds([30], limit, 20)).toBeCloseTo(0.06, 5);
  });
});

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 95)).toBe(95);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3], 100)).toBe(3);
  });

  it('rejects an empty sample and a percentile outside (0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => median([])).toThrow(RangeError);
  });

  it('takes the mean of the two middle samples for an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, 1, 3])).toBe(3);
  });
});

describe('cost model', () => {
  it('runs a 15-minute schedule 2,920 times a month', () => {
    expect(runsPerMonth(15)).toBe(2920);
  });

  it('prices duration × memory, requests, request units and WebSocket usage', () => {
    const cost = serverlessMonthlyCost({
      scheduleMinutes: 15,
      run: {
        durationMs: 10_000,
        memoryMb: 512,
        writeRequestUnits: 100,
        readRequestUnits: 200,
        webSocketMessages: 10,
      },
      connections: 1,
    });
    expect(cost.lambdaCompute).toBeCloseTo(2920 * 5 * PRICES.lambdaArmGbSecond.value, 9);
    expect(cost.lambdaRequests).toBeCloseTo(2920 * 0.2e-6, 12);
    expect(cost.dynamoDb).toBeCloseTo(2920 * (100 * 0.625e-6 + 200 * 0.125e-6), 12);
    expect(cost.webSocket).toBeCloseTo(2920 * 10 * 1e-6 + 43_800 * 0.25e-6, 12);
    expect(cost.total).toBeCloseTo(
      cost.lambdaCompute + cost.lambdaRequests + cost.dynamoDb + cost.webSocket,
      12,
    );
  });

  it('bills the always-on container by vCPU-hour and GB-hour', () => {
    expect(containerMonthlyCost(0.25, 0.5)).toBeCloseTo(730 * (0.25 * 0.03238 + 0.5 * 0.00356), 9);
  });

  it('estimates request units from item sizes', () => {
    expect(writeUnits(10)).toBe(1);
    expect(writeUnits(1025)).toBe(2);
    expect(writeUnits(10, true)).toBe(2);
    expect(readUnits(4097, true)).toBe(2);
    expect(readUnits(100, false)).toBe(0.5);
    expect(approxBytes({ pk: 'abc', n: 1, b: new Uint8Array(2000) })).toBe(3 + 2 + 3 + 1 + 8 + 1 + 2000);
    const tally = emptyTally();
    recordCapacity(tally, 'PutCommand', { Item: { pk: 'x'.repeat(3000) } }, {});
    recordCapacity(tally, 'QueryCommand', { ConsistentRead: false }, { Items: [{ pk: 'a' }, { pk: 'b' }] });
    expect(tally).toEqual({ wru: 3, rru: 0.5, requests: { PutItem: 1, Query: 1 } });
  });
});

describe('report', () => {
  it('marks a figure pass or fail against its target, and NaN never passes', () => {
    expect(figure('a', 1.05, 'ratio', { op: '<=', value: 1.1 }).pass).toBe(true);
    expect(figure('a', 1.2, 'ratio', { op: '<=', value: 1.1 }).pass).toBe(false);
    expect(figure('a', Number.NaN, 'ratio', { op: '<=', value: 1.1 }).pass).toBe(false);
    expect(figure('a', 3, 'count').pass).toBeNull();
    const table = markdownTable([figure('x | y', 0, 'count', { op: '==', value: 0 })]);
    expect(table).toContain('| x \\| y | 0 | = 0 | pass |');
  });

  it('names result files by UTC date and time', () => {
    expect(resultStamp(new Date('2025-01-02T03:04:05.678Z'))).toBe('2025-01-02T03-04-05');
  });
});
