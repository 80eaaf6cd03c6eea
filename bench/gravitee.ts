/**
 * Gravitee bridge: the DISCOVER reply time for a large catalog, and the bridge's memory.
 *
 * The bridge runs as the container image runs it (the bundle `gravitee/build.ts` writes, in its own
 * `node` process, so its RSS is its own). Gravitee's side is the test harness's integration-controller
 * stand-in (written from Gravitee's sources). The relay side is a stand-in too, at this size: a WebSocket
 * server speaking the relay protocol through the core's own message builders and framing (a `sync`
 * snapshot of N `api.upserted` events, each with a ~3 KB OpenAPI document, then `sync.completed` and the
 * reply), because seeding N APIs into moto and discovering them is the discovery benchmark's job, not
 * this one's: DISCOVER is answered from the bridge's in-memory catalog, never from AWS.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { buildBridge } from '../gravitee/build.js';
import { FRAGMENT_BYTES } from '../gravitee/src/exchange.js';
import { encodeMessage } from '../layers/federation-core/src/protocol/framing.js';
import { eventMessage, replyMessage } from '../layers/federation-core/src/protocol/protocol.js';
import { freePort } from '../local/ports.js';
import { startGraviteeController } from '../test/support/gravitee/controller.js';
import { type Figure, figure } from './lib/report.js';
import { median, round } from './lib/stats.js';

export const GRAVITEE_APIS = 10_000;
export const DISCOVER_REPETITIONS = 3;

function hex(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** A catalog entry as the relay sends it (`api.upserted`), with a small but realistic OpenAPI document. */
export function benchApi(i: number): Record<string, unknown> {
  const restApiId = hex(`rest-${i >> 1}`, 10);
  const stage = i % 2 === 0 ? 'dev' : 'prod';
  const name = `bench-api-${String(i >> 1).padStart(5, '0')}`;
  const paths: Record<string, unknown> = {};
  for (const path of ['/items', '/items/{id}', '/orders', '/orders/{id}', '/health']) {
    paths[path] = {
      get: {
        operationId: `get${path.replace(/\W+/g, '_')}`,
        parameters: path.includes('{id}')
          ? [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]
          : [],
        responses: {
          '200': {
            description: 'OK',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Item' } } },
          },
        },
        security: [{ api_key: [] }],
      },
    };
  }
  const document = {
    openapi: '3.0.1',
    info: { title: name, version: '2026-01-01T00:00:00Z' },
    servers: [
      {
        url: `https://${restApiId}.execute-api.us-east-1.amazonaws.com/{basePath}`,
        variables: { basePath: { default: stage } },
      },
    ],
    paths,
    components: {
      schemas: {
        Item: {
          type: 'object',
          properties: { id: { type: 'string' }, name: { type: 'string' }, price: { type: 'number' } },
        },
      },
      securitySchemes: { api_key: { type: 'apiKey', name: 'x-api-key', in: 'header' } },
    },
  };
  const id = hex(`api-${i}`, 32);
  return {
    id,
    name,
    version: stage,
    description: `Generated API number ${i >> 1}`,
    source: {
      name: 'default',
      accountId: '123456789012',
      region: 'us-east-1',
      restApiId,
      stageName: stage,
      deploymentId: hex(`dep-${i}`, 6),
    },
    endpoint: `https://${restApiId}.execute-api.us-east-1.amazonaws.com/${stage}`,
    labels: [`team=${['payments', 'catalog', 'platform', 'identity'][i % 4]}`, 'visibility=public'],
    plans: [
      {
        id: hex(`plan-${i}`, 32),
        usagePlanId: hex(`up-${i}`, 6),
        name: `plan-${name}-${stage}`,
        description: `Plan of ${name}/${stage}`,
        security: 'API_KEY',
        throttle: { rateLimit: 10, burstLimit: 20 },
        quota: { limit: 1000, period: 'MONTH' },
      },
    ],
    definition: { format: 'openapi-3.0', sha256: hex(`doc-${i}`, 64), document },
    fingerprint: hex(`fp-${i}`, 16),
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
}

/** The relay side: answers `sync` with a snapshot of `apis`, and `ping`. */
async function startRelayStandIn(
  apis: Record<string, unknown>[],
): Promise<{ url: string; close(): Promise<void> }> {
  const port = await freePort();
  const server = new WebSocketServer({ port, host: '127.0.0.1' });
  server.on('connection', (socket) => {
    socket.send(
      JSON.stringify(
        eventMessage('hello', {
          agentId: 'bench',
          provider: 'aws-api-gateway',
          version: 'bench',
          sources: [],
        }),
      ),
    );
    socket.on('message', (data) => {
      const command = JSON.parse(data.toString()) as { action: string; id: string };
      const send = (message: unknown) => {
        for (const frame of encodeMessage(message)) socket.send(frame);
      };
      if (command.action === 'sync') {
        for (const api of apis) send(eventMessage('api.upserted', api));
        send(eventMessage('sync.completed', { seq: apis.length, snapshot: true }));
        send(
          replyMessage(command.id, { status: 'SUCCEEDED', payload: { seq: apis.length, snapshot: true } }),
        );
      } else if (command.action === 'ping') {
        send(
          replyMessage(command.id, {
            status: 'SUCCEEDED',
            payload: { lastRun: { partial: false, finishedAt: new Date().toISOString() } },
          }),
        );
      } else {
        send(
          replyMessage(command.id, {
            status: 'FAILED',
            error: { code: 'VALIDATION', message: 'not in the bench' },
          }),
        );
      }
    });
  });
  await new Promise<void>((done) => server.once('listening', () => done()));
  return {
    url: `ws://127.0.0.1:${port}/bench`,
    close: () =>
      new Promise<void>((done) => {
        for (const client of server.clients) client.terminate();
        server.close(() => done());
      }),
  };
}

function memoryKiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const read = (key: string) =>
    Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? Number.NaN);
  return { rss: read('VmRSS'), peak: read('VmHWM') };
}

export async function benchGravitee(
  workDir: string,
  progress: (m: string) => void,
  apiCount = GRAVITEE_APIS,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  progress(`gravitee: bundling the bridge, ${apiCount} catalog entries`);
  const bundle = await buildBridge(join(workDir, 'gravitee-bridge.mjs'));
  const apis = Array.from({ length: apiCount }, (_, i) => benchApi(i));
  const relay = await startRelayStandIn(apis);
  const controller = await startGraviteeController({
    tokens: ['bench-token'],
    integrations: { 'bench-integration': { provider: 'aws-api-gateway' } },
    healthCheckIntervalMs: 60_000,
  });
  let child: ChildProcess | undefined;
  try {
    const started = performance.now();
    child = spawn(process.execPath, [bundle], {
      env: {
        PATH: process.env.PATH ?? '',
        gravitee_integration_connector_ws_endpoints_0: controller.endpoint,
        gravitee_integration_connector_ws_headers_0_name: 'Authorization',
        gravitee_integration_connector_ws_headers_0_value: 'bearer bench-token',
        gravitee_integration_providers_0_type: 'aws-api-gateway',
        gravitee_integration_providers_0_integrationId: 'bench-integration',
        FED_RELAY_URL: relay.url,
        FED_RELAY_TOKEN: 'bench-relay-token',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      log += c;
    });
    const session = await controller.nextSession(60_000);
    // Healthy once the relay snapshot is in.
    for (;;) {
      const health = await session.send('HEALTH_CHECK', {});
      if (health.payload?.healthy === true) break;
      if (performance.now() - started > 300_000) throw new Error(`bridge not healthy in 300 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const syncMs = performance.now() - started;
    progress(
      `gravitee: catalog of ${apiCount} synced in ${round(syncMs / 1000, 1)} s; DISCOVER ×${DISCOVER_REPETITIONS}`,
    );
    const samples: number[] = [];
    let count = 0;
    for (let i = 0; i < DISCOVER_REPETITIONS; i++) {
      const t0 = performance.now();
      const reply = await session.send('DISCOVER', {});
      samples.push(performance.now() - t0);
      count = ((reply.payload as { apis?: unknown[] } | undefined)?.apis ?? []).length;
      if (reply.commandStatus !== 'SUCCEEDED') throw new Error(`DISCOVER failed: ${reply.errorDetails}`);
    }
    const bytes = session.maxMessageBytes;
    const memory = memoryKiB(child.pid!);
    const discoverMs = median(samples);
    const figures = [
      figure(
        `gravitee DISCOVER reply, ${apiCount} APIs`,
        round(discoverMs),
        'ms',
        { op: '<=', value: 6_000 },
        `median of ${DISCOVER_REPETITIONS}, controller send → reply; ${count} APIs, ${round(bytes / 1024 / 1024, 2)} MiB in ${Math.ceil(bytes / FRAGMENT_BYTES)} frames ≤ ${session.maxFrameBytes} B (Gravitee waits 60 s)`,
      ),
      figure(
        `gravitee bridge RSS, ${apiCount} APIs`,
        round(memory.rss / 1024),
        'MiB',
        undefined,
        `after the DISCOVERs; peak ${round(memory.peak / 1024)} MiB; catalog with OpenAPI documents (~3 KB each) in memory`,
      ),
      figure(
        `gravitee bridge start → healthy, ${apiCount} APIs`,
        round(syncMs / 1000, 1),
        's',
        undefined,
        'process start, HELLO, relay sync snapshot received (relay stand-in on loopback)',
      ),
    ];
    return {
      figures,
      details: {
        apis: apiCount,
        discoverMs: samples,
        replyBytes: bytes,
        maxFrameBytes: session.maxFrameBytes,
        rssKiB: memory.rss,
        peakRssKiB: memory.peak,
        syncMs,
      },
    };
  } finally {
    child?.kill('SIGTERM');
    await controller.stop();
    await relay.close();
  }
}
