/**
 * `sync` of a large catalog: a control plane asks for a snapshot of 10,000 APIs (each with a small
 * OpenAPI document, loaded per API as on AWS) through the local WebSocket API emulator, and relay-command
 * serves it the way it is deployed: it answers the command by invoking itself asynchronously through a
 * local Lambda endpoint (5-minute timeout), each invocation sending for its budget and handing the rest
 * on. Reports the time until the reply, the messages received and the invocations.
 *
 * Part of `npm run bench` (skip with `--skip sync`); alone: `npx tsx bench/sync.ts [--apis 10000]`.
 */
import { parseArgs } from 'node:util';
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { Context } from 'aws-lambda';
import WebSocket from 'ws';
import {
  AwsClientFactory,
  CatalogRepository,
  createRelayWiring,
  DefinitionStore,
  decodeFrame,
  type FederatedApi,
  LambdaInvoker,
  loadConfig,
  mapPool,
  Reassembler,
} from '../layers/federation-core/src/index.js';
import { startLambdaEndpoint } from '../local/lambda-endpoint.js';
import { freePort } from '../local/ports.js';
import { startWebSocketApi } from '../local/websocket-api.js';
import { type BenchEnv, CREDENTIALS, REGION, startBenchEnv } from './env.js';
import { type Figure, figure } from './lib/report.js';
import { round } from './lib/stats.js';

export const SYNC_APIS = 10_000;
const TABLE = 'bench-sync-ledger';

/** A small OpenAPI document, shared by every API (one stored definition, loaded per API). */
function openApi(): Uint8Array {
  const paths: Record<string, unknown> = {};
  for (let i = 0; i < 20; i++) {
    paths[`/items/${i}`] = { get: { responses: { '200': { description: `item ${i}` } } } };
  }
  return new TextEncoder().encode(
    JSON.stringify({ openapi: '3.0.1', info: { title: 'Bench', version: '1' }, paths }),
  );
}

function api(i: number, sha256: string, size: number): FederatedApi {
  const restApiId = `r${String(i).padStart(9, '0')}`;
  return {
    id: `bench-${String(i).padStart(6, '0')}`,
    name: `API ${i}`,
    version: 'prod',
    source: {
      name: 'home',
      accountId: '123456789012',
      region: REGION,
      restApiId,
      stageName: 'prod',
      deploymentId: 'd1',
    },
    endpoint: `https://${restApiId}.execute-api.${REGION}.amazonaws.com/prod`,
    labels: ['team=bench'],
    plans: [
      {
        id: `plan-${i}`,
        usagePlanId: `up${i}`,
        name: 'Gold',
        security: 'API_KEY',
        throttle: { rateLimit: 10, burstLimit: 20 },
      },
    ],
    definition: { format: 'openapi-3.0', sha256, size },
    fingerprint: `fp${i}`,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
}

export async function benchSync(
  env: BenchEnv,
  progress: (message: string) => void,
  options: { apis?: number } = {},
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const apis = options.apis ?? SYNC_APIS;
  await env.createTable(TABLE);
  const wsPort = await freePort();
  const fnEnv = {
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: env.moto.endpoint,
    FED_CONFIG: JSON.stringify({ tableName: TABLE }),
    FED_CONNECTIONS_URL: `http://127.0.0.1:${wsPort}/local`,
  };
  Object.assign(process.env, fnEnv); // the handler module reads its config at import
  const { createRelayCommandHandler } = await import('../functions/relay-command/handler.js');
  const config = loadConfig(fnEnv);
  const clients = new AwsClientFactory({
    region: REGION,
    endpoint: env.moto.endpoint,
    credentials: { ...CREDENTIALS },
  });
  const table = { client: clients.dynamoDocument(), tableName: TABLE };
  progress(`sync: writing ${apis} catalog entries…`);
  const stored = await new DefinitionStore(table).put(openApi());
  const catalog = new CatalogRepository(table);
  await mapPool(
    Array.from({ length: apis }, (_, i) => i),
    32,
    (i) => catalog.putApi(api(i, stored.sha256, stored.size)),
  );

  let invocations = 0;
  let command: ((event: never, context: Context) => Promise<{ statusCode: number }>) | undefined;
  const lambda = await startLambdaEndpoint({
    port: 0,
    region: REGION,
    functions: {
      'relay-command': {
        timeoutMs: 300_000,
        handler: (event: unknown, context) => {
          invocations++;
          return (command as NonNullable<typeof command>)(event as never, context);
        },
      },
    },
  });
  const invoker = new LambdaInvoker(
    new LambdaClient({ region: REGION, endpoint: lambda.url, credentials: { ...CREDENTIALS } }),
  );
  const wiring = createRelayWiring({ config, clients, invoker });
  command = createRelayCommandHandler({ service: wiring.service });
  const target = {
    functionName: 'relay-command',
    handler: (e: unknown, c: Context) => (command as NonNullable<typeof command>)(e as never, c),
  };
  const ws = await startWebSocketApi({
    port: wsPort,
    region: REGION,
    routes: { $connect: async () => ({ statusCode: 200 }), sync: target, $default: target },
  });
  try {
    progress(`sync: snapshot of ${apis} APIs…`);
    const socket = new WebSocket(ws.url);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const reassembler = new Reassembler();
    let messages = 0;
    let upserted = 0;
    let bytes = 0;
    const t0 = performance.now();
    const reply = await new Promise<Record<string, unknown>>((resolve) => {
      socket.on('message', (data) => {
        const text = data.toString('utf8');
        bytes += Buffer.byteLength(text);
        const message = decodeFrame(text, reassembler) as Record<string, unknown> | undefined;
        if (!message) return;
        messages++;
        if (message.event === 'api.upserted') upserted++;
        if (message.type === 'reply') resolve(message);
      });
      socket.send(JSON.stringify({ action: 'sync', id: 'bench-sync' }));
    });
    const seconds = (performance.now() - t0) / 1000;
    socket.close();
    const completed = reply.status === 'SUCCEEDED' && upserted === apis;
    return {
      figures: [
        figure(
          `sync: ${apis}-API snapshot completes`,
          completed ? 1 : 0,
          'bool',
          { op: '==', value: 1 },
          `reply ${String(reply.status)}, ${upserted} api.upserted received`,
        ),
        figure(
          `sync: ${apis}-API snapshot, time to the reply`,
          round(seconds, 2),
          's',
          undefined,
          'local WebSocket API emulator, ledger in moto, each API with its document',
        ),
        figure(
          `sync: ${apis}-API snapshot, messages`,
          messages,
          'count',
          undefined,
          `api.upserted + sync.completed + reply; ${round(bytes / 1e6, 1)} MB`,
        ),
        figure(
          `sync: ${apis}-API snapshot, relay-command invocations`,
          invocations,
          'count',
          undefined,
          'asynchronous self-invocations, 5-minute timeout, 30 s hand-off margin',
        ),
      ],
      details: {
        apis,
        seconds: round(seconds, 2),
        messages,
        upserted,
        bytes,
        invocations,
        reply: reply.status,
      },
    };
  } finally {
    await ws.close();
    await lambda.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { apis: { type: 'string' } } });
  const env = await startBenchEnv();
  try {
    const result = await benchSync(env, (m) => process.stderr.write(`[bench sync] ${m}\n`), {
      apis: values.apis ? Number(values.apis) : undefined,
    });
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await env.stop();
  }
}
