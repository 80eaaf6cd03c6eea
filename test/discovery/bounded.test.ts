/**
 * Bounded items (issues 15.5 and 16): a run summary with thousands of errors stays under DynamoDB's
 * 400 KB item limit, which moto enforces like DynamoDB ("Item size has exceeded the maximum allowed
 * size"): the run is recorded and its `discovery.completed` appended instead of the whole run failing.
 * The same for a fanned-out run: a unit's `UNIT#` item keeps its errors bounded, so the unit ends.
 */
import {
  type APIGatewayClient,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
} from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DiscoveryEngine,
  EventType,
  parseAgentConfig,
  runSummary,
  SUMMARY_ERRORS_MAX,
  startFanOutRun,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { fanOutHarness } from './fan-out-harness.js';
import { discoveryHarness } from './harness.js';

const MANY = 5_000;

/**
 * API Gateway as a huge account would answer: `MANY` REST APIs on one usage plan, and GetStages
 * failing for each of them (5xx after retries). No real API Gateway behind it.
 */
function failingApiGateway(): APIGatewayClient {
  const ids = Array.from({ length: MANY }, (_, i) => `r${String(i).padStart(9, '0')}`);
  return {
    send: async (command: unknown) => {
      if (command instanceof GetRestApisCommand)
        return { items: ids.map((id) => ({ id, name: `API ${id}` })) };
      if (command instanceof GetUsagePlansCommand)
        return {
          items: [{ id: 'plan1', name: 'Gold', apiStages: ids.map((apiId) => ({ apiId, stage: 'prod' })) }],
        };
      if (command instanceof GetStagesCommand)
        throw Object.assign(new Error('Internal server error'), {
          name: 'InternalFailure',
          $fault: 'server',
          $metadata: { httpStatusCode: 500 },
        });
      throw new Error(`unexpected ${String(command)}`);
    },
  } as unknown as APIGatewayClient;
}

describe('bounded items (400 KB)', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it('records a run with 5,000 failed calls: the first errors in full, all counted by code', async () => {
    const h = await discoveryHarness(emu);
    const failing = failingApiGateway();
    const agent = parseAgentConfig({});
    const engine = new DiscoveryEngine(
      { ...h.deps, apiGateway: () => failing },
      {
        sources: agent.sources,
        acceptApiWithoutUsagePlan: agent.acceptApiWithoutUsagePlan,
        labels: agent.labels,
        rateLimit: { ratePerSecond: 100_000, burst: 100_000 }, // no real API Gateway behind it
        concurrency: agent.concurrency,
        defaultRegion: emu.region,
        retry: { maxAttempts: 1 },
      },
    );
    const { summary, events } = await engine.run();
    expect(summary.partial).toBe(true);
    expect(summary.errorCount).toBe(MANY);
    expect(summary.errorsByCode).toEqual({ AWS_ERROR: MANY });
    expect(summary.errors).toHaveLength(SUMMARY_ERRORS_MAX);
    expect(await h.runs.get(summary.runId)).toMatchObject({ runId: summary.runId, errorCount: MANY });
    expect(events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
  }, 120_000);

  it('ends a fanned-out unit with 5,000 failed calls: its UNIT# item holds the first errors, the run counts all', async () => {
    const h = await discoveryHarness(emu);
    const failing = failingApiGateway();
    const f = await fanOutHarness(
      emu,
      { fanOut: { enabled: true } },
      {
        harness: { ...h, deps: { ...h.deps, apiGateway: () => failing } },
        // A unit reads `callConcurrency` candidates' stages a step: 100 keeps 5,000 to 50 steps.
        settings: { retry: { maxAttempts: 1 }, callConcurrency: 100 },
        rateLimit: { ratePerSecond: 100_000, burst: 100_000 }, // no real API Gateway behind it
      },
    );
    try {
      const started = await startFanOutRun(f.deps);
      expect(started.unitsTotal).toBe(1);
      const run = await f.completed(started.runId, 60_000);
      const [unit] = await f.deps.ledger.listUnits(started.runId);
      expect(unit?.outcome).toMatchObject({ errorCount: MANY, errorsByCode: { AWS_ERROR: MANY } });
      expect(unit?.outcome?.errors).toHaveLength(SUMMARY_ERRORS_MAX);
      const summary = await runSummary(f.deps, run);
      expect(summary).toMatchObject({
        partial: true,
        errorCount: MANY,
        errorsByCode: { AWS_ERROR: MANY },
        fanOut: { units: 1, unitsEnded: 1, unitStatus: { partial: 1 }, deadlineReached: false },
      });
      expect(summary.errors).toHaveLength(SUMMARY_ERRORS_MAX);
      expect(summary.errors[0]).toMatchObject({ operation: 'GetStages r000000000', code: 'AWS_ERROR' });
      const events = await h.outbox.listAfter(0);
      expect(events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
      expect(events[0]!.payload).toMatchObject({ runId: started.runId, errorCount: MANY });
    } finally {
      await f.stop();
    }
  }, 120_000);
});
