/**
 * Change events (`npm run bench -- --scenario change-events`): `npm start` as a child process (its
 * built-in moto, the fidelity proxy, the real handlers), a control-plane client connected to the relay,
 * then `CreateDeployment` calls through the printed AWS endpoint, one at a time: the time from sending
 * the call until the client holds the `api.upserted` (p50, p95), and the API Gateway calls of each
 * targeted run (from its `discovery.completed` summary). Then one incremental full run (Lambda Invoke of
 * discovery) for the calls of an unchanged rerun, scaled to 500 APIs per account-region: management
 * calls per day with the 15-minute schedule and with change events on (6-hour reconciliation).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { APIGatewayClient, CreateDeploymentCommand } from '@aws-sdk/client-api-gateway';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ControlPlaneClient } from '../client/control-plane-client.js';
import { freePort } from '../local/ports.js';
import { type Figure, figure } from './lib/report.js';
import { median, percentile, round } from './lib/stats.js';

const ROOT = resolve(import.meta.dirname, '..');
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
/** Deployments measured (small: the figure is a latency, not a load). */
export const CHANGES = 20;
/** The account-region size of the per-day figure. */
const APIS = 500;

interface Summary {
  targeted?: boolean;
  apiCalls?: Record<string, number>;
  counts?: { discovered?: number };
}

function waitFor(out: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((done, fail) => {
    const tick = () => {
      const match = out().match(pattern);
      if (match) return done(match);
      if (Date.now() > deadline) return fail(new Error(`npm start did not print ${pattern}:\n${out()}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

const total = (calls: Record<string, number> = {}) => Object.values(calls).reduce((a, b) => a + b, 0);

export async function benchChangeEvents(
  progress: (message: string) => void,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const [relayPort, lambdaPort, awsPort] = [await freePort(), await freePort(), await freePort()];
  const env = { ...process.env };
  for (const name of ['AWS_ENDPOINT_URL', 'FED_RELAY_TOKEN', 'FED_CONFIG', 'FED_CONFIG_FILE'])
    delete env[name];
  progress('change events: starting npm start (its own moto)');
  const child: ChildProcess = spawn(
    resolve(ROOT, 'node_modules/.bin/tsx'),
    [
      'local/start.ts',
      '--relay-port',
      String(relayPort),
      '--lambda-port',
      String(lambdaPort),
      '--aws-port',
      String(awsPort),
      '--schedule-seconds',
      '0',
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.resume();
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let client: ControlPlaneClient | undefined;
  try {
    await waitFor(() => out, /^ready in /m, 180_000);
    const token = out.match(/^Relay token:\s+(\S+)/m)![1]!;
    const command =
      /create-deployment --endpoint-url (\S+) --region us-east-1 \\\n\s+--rest-api-id (\S+) --stage-name (\S+)/.exec(
        out,
      );
    if (!command) throw new Error('npm start printed no create-deployment command');
    const [, endpoint, restApiId, stageName] = command;
    const apiGateway = new APIGatewayClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS });
    client = new ControlPlaneClient({ url: `ws://127.0.0.1:${relayPort}/local`, token, reconnect: false });
    await client.connect();

    const latencies: number[] = [];
    const callsPerChange: Array<Record<string, number>> = [];
    progress(`change events: ${CHANGES} create-deployment calls through ${endpoint}`);
    for (let i = 0; i < CHANGES; i++) {
      const c = client;
      const t0 = performance.now();
      const seen = new Promise<number>((done) => {
        const on = (e: { event: string; payload: { source?: { restApiId?: string } } }) => {
          if (e.event === 'api.upserted' && e.payload.source?.restApiId === restApiId) {
            c.off('event', on);
            done(performance.now() - t0);
          }
        };
        c.on('event', on);
      });
      const completed = new Promise<Summary>((done) => {
        const on = (e: { event: string; payload: Summary }) => {
          if (e.event === 'discovery.completed' && e.payload.targeted) {
            c.off('event', on);
            done(e.payload);
          }
        };
        c.on('event', on);
      });
      await apiGateway.send(new CreateDeploymentCommand({ restApiId, stageName }));
      latencies.push(await seen);
      callsPerChange.push((await completed).apiCalls ?? {});
    }
    apiGateway.destroy();

    // One unchanged incremental run, as the schedule runs it.
    const lambda = new LambdaClient({
      endpoint: `http://127.0.0.1:${lambdaPort}`,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    const invoke = await lambda.send(
      new InvokeCommand({ FunctionName: 'discovery', Payload: Buffer.from('{}') }),
    );
    lambda.destroy();
    const rerun = JSON.parse(Buffer.from(invoke.Payload!).toString('utf8')) as Summary;
    const discovered = rerun.counts?.discovered ?? 0;
    // At 500 APIs, all federable: one page each of GetRestApis and GetUsagePlans, one GetStages per API
    // (the measured rerun has the same shape: 1 + 1 + one GetStages per candidate, no export).
    const perRun500 = 2 + APIS;
    const perDay15 = perRun500 * 96;
    const perDay6h = perRun500 * 4;
    const perChange = median(callsPerChange.map((c) => total(c)));

    const figures = [
      figure(
        'change events: write call → api.upserted on a client, p50 (local)',
        round(median(latencies), 0),
        'ms',
        { op: '<=', value: 2000 },
        `${CHANGES} CreateDeployment calls through the printed AWS endpoint, one at a time; 250 ms local batching window`,
      ),
      figure(
        'change events: write call → api.upserted on a client, p95 (local)',
        round(percentile(latencies, 95), 0),
        'ms',
        { op: '<=', value: 2000 },
      ),
      figure(
        'change events: API Gateway calls per targeted redeploy',
        perChange,
        'calls',
        { op: '<=', value: 5 },
        JSON.stringify(callsPerChange[0]),
      ),
      figure(
        `change events: management calls/day, unchanged account-region of ${APIS} APIs, 15-minute schedule`,
        perDay15,
        'calls',
        undefined,
        `96 runs × (GetRestApis 1 + GetUsagePlans 1 + GetStages ${APIS}); measured rerun: ${JSON.stringify(rerun.apiCalls)} for ${discovered} APIs`,
      ),
      figure(
        `change events: management calls/day, unchanged account-region of ${APIS} APIs, events on (6-hour reconciliation)`,
        perDay6h,
        'calls',
        undefined,
        `4 runs × ${perRun500}; plus ${perChange} per change`,
      ),
    ];
    return {
      figures,
      details: { latenciesMs: latencies.map((l) => round(l, 1)), callsPerChange, rerun: rerun.apiCalls },
    };
  } finally {
    await client?.close();
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}
