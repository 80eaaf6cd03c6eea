import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/discover.js';
import { demoSeed, seed } from '../../emulator/seeder.js';
import {
  createDiscoveryHandler,
  DISCOVERY_METRICS,
  type DiscoveryHandlerDeps,
  parseDiscoveryEvent,
} from '../../functions/discovery/handler.js';
import {
  type CommandReply,
  type DiscoverySummary,
  EventType,
  type FederatedApi,
  type OutboxEvent,
  type RelayPublisher,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type DiscoveryHarness, discoveryHarness } from './harness.js';

/** Records what the handler hands to the relay port (the real publisher is tested with the relay). */
function recordingPublisher() {
  const published: OutboxEvent[][] = [];
  const replies: Array<{ connectionId: string; reply: CommandReply }> = [];
  const publisher: RelayPublisher = {
    publishEvents: async (events) => {
      published.push([...events]);
    },
    reply: async (connectionId, reply) => {
      replies.push({ connectionId, reply });
    },
  };
  return { publisher, published, replies };
}

function recordingMetrics() {
  const metrics: Record<string, number> = {};
  /** `Errors` by their `code` dimension. */
  const errorsByCode: Record<string, number> = {};
  return {
    metrics,
    errorsByCode,
    sink: {
      addMetric: (name: string, _unit: unknown, value: number) => {
        metrics[name] = (metrics[name] ?? 0) + value;
      },
      singleMetric: () => {
        const dimensions: Record<string, string> = {};
        return {
          addDimension: (name: string, value: string) => {
            dimensions[name] = value;
          },
          addMetric: (name: string, _unit: unknown, value: number) => {
            if (name === 'Errors')
              errorsByCode[dimensions.code ?? '-'] = (errorsByCode[dimensions.code ?? '-'] ?? 0) + value;
          },
        };
      },
    } as unknown as DiscoveryHandlerDeps['metrics'],
  };
}

const SCHEDULED_EVENT = {
  version: '0',
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2025-01-01T00:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:events:us-east-1:123456789012:rule/discovery'],
  detail: {},
};

describe('parseDiscoveryEvent', () => {
  it('reads a scheduled event and {} as a full incremental run', () => {
    expect(parseDiscoveryEvent(SCHEDULED_EVENT)).toEqual({});
    expect(parseDiscoveryEvent({})).toEqual({});
    expect(parseDiscoveryEvent(undefined)).toEqual({});
  });

  it('reads sources, full and replyTo', () => {
    const request = { sources: ['main'], full: true, replyTo: { connectionId: 'c1', commandId: 'k1' } };
    expect(parseDiscoveryEvent(request)).toEqual(request);
  });

  it('rejects unknown fields, wrong types and empty source lists with a ValidationError', () => {
    for (const bad of [
      { full: 'yes' },
      { sources: [] },
      { sources: ['bad name!'] },
      { extra: 1 },
      { replyTo: {} },
      'x',
    ]) {
      expect(() => parseDiscoveryEvent(bad)).toThrowError(expect.objectContaining({ code: 'VALIDATION' }));
    }
  });
});

describe('discovery handler', () => {
  let emu: Emulator;
  let h: DiscoveryHarness;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
    await seed(emu.apiGateway(), demoSeed());
    h = await discoveryHarness(emu);
    emu.proxy.resetCalls();
  });

  it('rejects a bad event as a VALIDATION function error without any AWS call', async () => {
    const { publisher, published } = recordingPublisher();
    const handler = createDiscoveryHandler({ engine: h.engine, publisher });
    await expect(handler({ full: 'yes' })).rejects.toThrow(/^VALIDATION: /);
    expect(emu.proxy.calls.count()).toBe(0);
    expect(published).toEqual([]);
  });

  it('runs on a scheduled event, publishes the appended events and emits the metrics', async () => {
    const { publisher, published } = recordingPublisher();
    const { metrics, sink } = recordingMetrics();
    const handler = createDiscoveryHandler({ engine: h.engine, publisher, metrics: sink });
    const summary = await handler(SCHEDULED_EVENT, { getRemainingTimeInMillis: () => 60_000 });
    // demo seed: 5 APIs × 2 stages; 7 stages on a usage plan
    expect(summary.counts).toMatchObject({ discovered: 7, upserted: 7 });
    expect(summary.partial).toBe(false);
    expect(published).toHaveLength(1);
    expect(published[0]!.map((e) => e.event)).toEqual([
      ...Array(7).fill(EventType.API_UPSERTED),
      EventType.DISCOVERY_COMPLETED,
    ]);
    expect(published[0]!.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(metrics).toEqual({
      [DISCOVERY_METRICS.runs]: 1,
      [DISCOVERY_METRICS.partialRuns]: 0,
      [DISCOVERY_METRICS.failedRuns]: 0,
      [DISCOVERY_METRICS.apiCalls]: emu.proxy.calls.count({ service: 'apigateway' }),
      [DISCOVERY_METRICS.throttles]: 0,
      [DISCOVERY_METRICS.apisUpserted]: 7,
      [DISCOVERY_METRICS.apisRemoved]: 0,
    });
    // the events reference definitions the relay can load
    const api = published[0]![0]!.payload as FederatedApi;
    expect(await h.definitions.has(api.definition!.sha256)).toBe(true);
  });

  it('replies SUCCEEDED with the summary to the command that asked', async () => {
    const { publisher, replies } = recordingPublisher();
    const handler = createDiscoveryHandler({ engine: h.engine, publisher });
    const summary = await handler({
      sources: ['default'],
      full: true,
      replyTo: { connectionId: 'conn-1', commandId: 'cmd-1' },
    });
    expect(summary.full).toBe(true);
    expect(replies).toEqual([
      { connectionId: 'conn-1', reply: { commandId: 'cmd-1', status: 'SUCCEEDED', payload: summary } },
    ]);
  });

  it('replies FAILED to a run that cannot start, counting the client mistake by code, not as a fault', async () => {
    const { publisher, replies } = recordingPublisher();
    const { metrics, errorsByCode, sink } = recordingMetrics();
    const handler = createDiscoveryHandler({ engine: h.engine, publisher, metrics: sink });
    await expect(
      handler({ sources: ['nope'], replyTo: { connectionId: 'conn-1', commandId: 'cmd-2' } }),
    ).rejects.toThrow(/^VALIDATION: unknown source/);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.reply).toMatchObject({
      commandId: 'cmd-2',
      status: 'FAILED',
      error: { code: 'VALIDATION' },
    });
    // An unknown source is the caller's mistake: counted by code, never a failed run or a fault (alarms).
    expect(errorsByCode).toEqual({ VALIDATION: 1 });
    expect(metrics[DISCOVERY_METRICS.failedRuns]).toBe(0);
    expect(metrics.Faults).toBe(0);
    expect(emu.proxy.calls.count()).toBe(0);
  });

  it('reports BUSY while another run holds the account-region', async () => {
    await h.leases.acquire(`discovery#${emu.accountId}#${emu.region}`, 'other', 60_000);
    const { publisher } = recordingPublisher();
    const { metrics, errorsByCode, sink } = recordingMetrics();
    const handler = createDiscoveryHandler({ engine: h.engine, publisher, metrics: sink });
    await expect(handler({})).rejects.toThrow(/^BUSY: /);
    expect(errorsByCode).toEqual({ BUSY: 1 });
    expect(metrics[DISCOVERY_METRICS.failedRuns]).toBe(0);
    expect(metrics.Faults).toBe(0);
  });

  it('keeps the summary when publishing fails: the events stay in the outbox', async () => {
    const publisher: RelayPublisher = {
      publishEvents: async () => {
        throw new Error('relay down');
      },
      reply: async () => {},
    };
    const handler = createDiscoveryHandler({ engine: h.engine, publisher });
    const summary: DiscoverySummary = await handler({});
    expect(summary.counts.upserted).toBe(7);
    expect((await h.outbox.listAfter(0)).length).toBe(8);
  });
});

describe('cli/discover.ts', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
    await seed(emu.apiGateway(), demoSeed());
  });
  afterAll(async () => {
    await emu?.stop();
  });

  const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      env: { AWS_REGION: 'us-east-1', ...env },
    });
    return { code, stdout, stderr };
  };

  it('creates the ledger, runs one discovery and prints the summary and the catalog', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'discover-cli-'));
    const configFile = join(dir, 'agent.json');
    writeFileSync(
      configFile,
      JSON.stringify({ tableName: 'cli-ledger', labels: { exclude: ['visibility=internal'] } }),
    );
    const first = await run(['--endpoint', emu.endpoint, '--config', configFile]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout) as { summary: DiscoverySummary; catalog: FederatedApi[] };
    // 7 stages on usage plans; the internal audit API (on no plan) is excluded anyway
    expect(out.summary.counts).toMatchObject({ discovered: 7, upserted: 7 });
    expect(out.catalog.map((a) => a.name).sort()).toEqual([
      'Inventory',
      'Orders',
      'Orders',
      'Payments',
      'Payments',
      'Petstore',
      'Petstore',
    ]);
    const petstoreProd = out.catalog.find((a) => a.name === 'Petstore' && a.version === 'prod')!;
    expect(petstoreProd.plans.map((p) => p.name).sort()).toEqual(['Gold', 'Silver']);

    const second = await run(['--endpoint', emu.endpoint, '--config', configFile]);
    const again = JSON.parse(second.stdout) as { summary: DiscoverySummary; catalog: FederatedApi[] };
    expect(again.summary.counts).toMatchObject({ upserted: 0, unchanged: 7, exported: 0 });
    expect(again.catalog).toEqual(out.catalog);
  });

  it('prints usage for --help and rejects an unknown flag with exit code 2', async () => {
    expect((await run(['--help'])).code).toBe(0);
    const bad = await run(['--nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('usage: apigw-fed discover');
  });

  it('fails with exit code 1 and a typed message on an invalid config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'discover-cli-'));
    const configFile = join(dir, 'agent.json');
    writeFileSync(configFile, JSON.stringify({ concurrency: 0 }));
    const result = await run(['--endpoint', emu.endpoint, '--config', configFile]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^discover failed: CONFIG: .*concurrency/);
  });
});
