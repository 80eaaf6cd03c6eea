/**
 * Relay fan-out: one discovery's events (the first run of the scenario, `api.upserted` with their
 * OpenAPI documents and `discovery.completed`) published by the core's `@connections` publisher to 1
 * and to 50 control-plane clients connected through the local WebSocket API emulator
 * (`local/websocket-api.ts`) with the real relay handlers (authorizer, connection, command). Time from
 * the start of publishing until every client holds every event; median of a few repetitions.
 */
import WebSocket from 'ws';
import {
  AwsClientFactory,
  createRelayWiring,
  decodeFrame,
  loadConfig,
  type OutboxEvent,
  Reassembler,
  secretLoader,
  TokenVerifier,
} from '../layers/federation-core/src/index.js';
import { freePort } from '../local/ports.js';
import { startWebSocketApi } from '../local/websocket-api.js';
import { type DiscoveryScenarioResult, readEvents } from './discovery.js';
import { type BenchEnv, CREDENTIALS, REGION } from './env.js';
import { type Figure, figure } from './lib/report.js';
import { median, ratio, round } from './lib/stats.js';
import { functionEnv } from './subscriptions.js';

export const FAN_OUT = 50;
export const REPETITIONS = 3;

interface Client {
  readonly socket: WebSocket;
  /** Highest event sequence received (hello excluded). */
  received: Set<number>;
  hello: Promise<void>;
  waiter?: { target: number; resolve: () => void };
}

function connect(url: string, token: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    const reassembler = new Reassembler();
    let helloResolve!: () => void;
    const client: Client = {
      socket,
      received: new Set(),
      hello: new Promise<void>((r) => {
        helloResolve = r;
      }),
    };
    socket.on('message', (data) => {
      const message = decodeFrame(data.toString('utf8'), reassembler) as
        | { type?: string; event?: string; seq?: number }
        | undefined;
      if (message?.type !== 'event') return;
      if (message.event === 'hello') {
        helloResolve();
        return;
      }
      client.received.add(message.seq ?? -1);
      if (client.waiter && client.received.size >= client.waiter.target) client.waiter.resolve();
    });
    socket.once('open', () => resolve(client));
    socket.once('error', reject);
  });
}

function allReceived(client: Client, count: number): Promise<void> {
  if (client.received.size >= count) return Promise.resolve();
  return new Promise((resolve) => {
    client.waiter = { target: count, resolve };
  });
}

export async function benchRelay(
  env: BenchEnv,
  scenario: DiscoveryScenarioResult,
  progress: (m: string) => void,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const events: OutboxEvent[] = readEvents(scenario.eventsFile);
  const port = await freePort();
  const connectionsUrl = `http://127.0.0.1:${port}/local`;
  const fnEnv = functionEnv(scenario, env.moto.endpoint, { FED_CONNECTIONS_URL: connectionsUrl });
  Object.assign(process.env, fnEnv); // handler modules read their config at import
  const [{ createRelayAuthorizerHandler }, { createRelayConnectionHandler }, { createRelayCommandHandler }] =
    await Promise.all([
      import('../functions/relay-authorizer/handler.js'),
      import('../functions/relay-connection/handler.js'),
      import('../functions/relay-command/handler.js'),
    ]);
  const config = loadConfig(fnEnv);
  const clients = new AwsClientFactory({
    region: REGION,
    endpoint: env.moto.endpoint,
    credentials: { ...CREDENTIALS },
  });
  const wiring = createRelayWiring({ config, clients });
  const authorizer = createRelayAuthorizerHandler({
    verifier: new TokenVerifier({
      loadToken: secretLoader(clients.secretsManager(), config.agent.relayTokenSecretName),
    }),
  });
  const connection = createRelayConnectionHandler({
    connections: wiring.connections,
    sendHello: (id) => wiring.service.sendHello(id, { goneRetries: 20, goneRetryDelayMs: 25 }),
    // Lambda's asynchronous self-invocation, in-process: after $connect has returned.
    scheduleHello: async (request, context) => {
      setTimeout(() => void connection(request, context).catch(() => undefined), 0);
    },
  });
  const command = createRelayCommandHandler({ service: wiring.service });
  const api = await startWebSocketApi({
    port,
    stage: 'local',
    authorizer,
    identitySource: ['route.request.header.Authorization'],
    routes: {
      $connect: connection as never,
      $disconnect: connection as never,
      $default: command as never,
      discover: command as never,
      sync: command as never,
      subscribe: command as never,
      unsubscribe: command as never,
      ping: command as never,
    },
  });
  const token = scenario.secrets.relayToken;
  const measure = async (n: number): Promise<number[]> => {
    const samples: number[] = [];
    for (let rep = 0; rep < REPETITIONS; rep++) {
      const connected = await Promise.all(Array.from({ length: n }, () => connect(api.url, token)));
      await Promise.all(connected.map((c) => c.hello));
      const t0 = performance.now();
      const report = await wiring.publisher.publish(events);
      await Promise.all(connected.map((c) => allReceived(c, events.length)));
      samples.push(performance.now() - t0);
      if (report.failed > 0 || report.gone > 0) throw new Error(`relay publish: ${JSON.stringify(report)}`);
      await Promise.all(
        connected.map(
          (c) =>
            new Promise<void>((resolve) => {
              c.socket.once('close', () => resolve());
              c.socket.close();
            }),
        ),
      );
      await api.idle();
    }
    return samples;
  };
  try {
    progress(`relay: ${events.length} events to 1 client…`);
    const one = await measure(1);
    progress(`relay: ${events.length} events to ${FAN_OUT} clients…`);
    const many = await measure(FAN_OUT);
    const oneMs = round(median(one), 1);
    const manyMs = round(median(many), 1);
    return {
      figures: [
        figure(
          `relay: one discovery's events to 1 client`,
          oneMs,
          'ms',
          undefined,
          `${events.length} events (first run of the smallest scenario) through @connections of the local WebSocket API; median of ${REPETITIONS}`,
        ),
        figure(
          `relay: same events to ${FAN_OUT} clients`,
          manyMs,
          'ms',
          undefined,
          `${events.length * FAN_OUT} posts; publisher concurrency 10 connections; median of ${REPETITIONS}`,
        ),
        figure(
          `relay: ${FAN_OUT} clients / 1 client`,
          ratio(manyMs, oneMs, 2),
          'ratio',
          undefined,
          `time until every client holds every event (documents loaded once per publish)`,
        ),
      ],
      details: {
        events: events.length,
        oneClientMs: one.map((s) => round(s, 1)),
        fanOutMs: many.map((s) => round(s, 1)),
      },
    };
  } finally {
    await api.close();
  }
}
