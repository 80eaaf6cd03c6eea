/**
 * Bounded items (issues 15.5 and 16): a run summary with thousands of errors stays under DynamoDB's
 * 400 KB item limit, which moto enforces like DynamoDB ("Item size has exceeded the maximum allowed
 * size"): the run is recorded and its `discovery.completed` appended instead of the whole run failing.
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
  SUMMARY_ERRORS_MAX,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { discoveryHarness } from './harness.js';

const MANY = 5_000;

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
    // API Gateway as a huge account would answer: 5,000 REST APIs on one usage plan, and GetStages
    // failing for each of them (5xx after retries). The ledger is moto's DynamoDB.
    const ids = Array.from({ length: MANY }, (_, i) => `r${String(i).padStart(9, '0')}`);
    const failing = {
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
});
