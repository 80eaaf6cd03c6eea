/**
 * `npm start` / `apigw-fed start`: runs the whole agent locally against an emulated AWS (see
 * `runtime.ts`), prints the discovered APIs, the relay URL, the token and copy-paste commands, then
 * serves until Ctrl-C / SIGTERM.
 *
 * Exit codes: 0 stopped cleanly by SIGINT/SIGTERM/SIGHUP (or `--help`), 1 failed to start, 2 bad flags.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { FederatedApi } from '@apigw-federation/core';
import { PortInUseError } from './ports.js';
import {
  DEFAULT_AWS_PORT,
  DEFAULT_LAMBDA_PORT,
  DEFAULT_RELAY_PORT,
  DEFAULT_SCHEDULE_SECONDS,
  type LocalRuntime,
  parsePort,
  startLocalRuntime,
} from './runtime.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export const USAGE = `usage: npm start -- [options]   (or: npx apigw-fed start [options])

Runs the federation agent locally: a moto AWS emulator seeded with demo REST APIs, the real Lambda
handlers behind a local WebSocket API (the relay) and a local Lambda Invoke endpoint, and a discovery
schedule.

options:
  --relay-port <port>         WebSocket API (relay) port, default ${DEFAULT_RELAY_PORT} (env FED_RELAY_PORT)
  --lambda-port <port>        Lambda Invoke endpoint port, default ${DEFAULT_LAMBDA_PORT} (env FED_LAMBDA_PORT)
  --aws-port <port>           AWS endpoint port, default ${DEFAULT_AWS_PORT} (env FED_AWS_PORT); API Gateway write
                              calls made through it become change events (CloudTrail stand-in)
  --schedule-seconds <n>      seconds between discovery runs, default ${DEFAULT_SCHEDULE_SECONDS} (0: only at start)
  --no-seed                   do not create the demo APIs
  --moto-fixes                with AWS_ENDPOINT_URL: put the fidelity proxy (API Gateway paging, OpenAPI 3
                              exports) in front of it, for a bare moto (env FED_MOTO_FIXES=1); off by default
  -h, --help                  show this help

environment:
  AWS_ENDPOINT_URL            use your own AWS endpoint (moto, LocalStack, a recording proxy) instead of
                              starting moto; the agent's calls reach it unchanged
  FED_RELAY_TOKEN             relay token to use (default: a new random one per start)
  AWS_REGION                  region of the agent, default us-east-1
`;

export interface StartOptions {
  relayPort?: number;
  lambdaPort?: number;
  awsPort?: number;
  scheduleSeconds?: number;
  seed: boolean;
  /** `--moto-fixes`; undefined when not given (the environment decides). */
  motoFixes?: boolean;
  help: boolean;
}

/** Parses the flags; throws a message for the user on a bad one. */
export function parseStartArgs(argv: readonly string[]): StartOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'relay-port': { type: 'string' },
      'lambda-port': { type: 'string' },
      'aws-port': { type: 'string' },
      'schedule-seconds': { type: 'string' },
      'no-seed': { type: 'boolean', default: false },
      'moto-fixes': { type: 'boolean' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  let scheduleSeconds: number | undefined;
  if (values['schedule-seconds'] !== undefined) {
    scheduleSeconds = Number(values['schedule-seconds']);
    if (
      values['schedule-seconds'].trim() === '' ||
      !Number.isFinite(scheduleSeconds) ||
      scheduleSeconds < 0
    ) {
      throw new RangeError(
        `--schedule-seconds: expected a number of seconds >= 0, received ${JSON.stringify(values['schedule-seconds'])}`,
      );
    }
  }
  const relayPort = parsePort(values['relay-port'], '--relay-port');
  const lambdaPort = parsePort(values['lambda-port'], '--lambda-port');
  const awsPort = parsePort(values['aws-port'], '--aws-port');
  return {
    ...(awsPort === undefined ? {} : { awsPort }),
    ...(relayPort === undefined ? {} : { relayPort }),
    ...(lambdaPort === undefined ? {} : { lambdaPort }),
    ...(scheduleSeconds === undefined ? {} : { scheduleSeconds }),
    seed: !values['no-seed'],
    ...(values['moto-fixes'] ? { motoFixes: true } : {}),
    help: values.help,
  };
}

function formatThrottle(plan: FederatedApi['plans'][number]): string {
  const parts: string[] = [];
  if (plan.throttle?.rateLimit !== undefined) parts.push(`${plan.throttle.rateLimit} rps`);
  if (plan.quota?.limit !== undefined)
    parts.push(`${plan.quota.limit}/${String(plan.quota.period).toLowerCase()}`);
  return parts.length > 0 ? `${plan.name} (${parts.join(', ')})` : plan.name;
}

/** The catalog as a plain-text table: name, stage, plans. */
export function formatCatalog(apis: readonly FederatedApi[]): string {
  if (apis.length === 0) return '  (no federated APIs yet: discovery found none, or it has not run)\n';
  const rows = [...apis]
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
    .map((api) => [
      api.name,
      api.version,
      [...api.plans]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(formatThrottle)
        .join(', ') || '-',
      api.id,
    ]);
  const header = ['API', 'STAGE', 'PLANS', 'ID'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `  ${cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()}\n`;
  return line(header) + rows.map(line).join('');
}

/** What stands between the agent and the emulator, for the `AWS endpoint` line. */
export function describeAwsEndpoint(
  runtime: Pick<LocalRuntime, 'fidelityProxy' | 'ownsEmulator' | 'emulatorEndpoint'>,
): string {
  const tap = 'API Gateway writes through it become change events';
  if (runtime.ownsEmulator) return `${tap}; fidelity proxy in front of moto at ${runtime.emulatorEndpoint}`;
  if (runtime.fidelityProxy)
    return `${tap}; fidelity proxy (--moto-fixes) in front of your endpoint ${runtime.emulatorEndpoint}`;
  return `${tap}; your endpoint ${runtime.emulatorEndpoint} (AWS_ENDPOINT_URL) gets the calls unchanged`;
}

/** One line on the discovery run at start: what it found, its API Gateway calls, and whether it was partial. */
export function formatFirstDiscovery(result: unknown): string | undefined {
  const summary = result as
    | {
        partial?: boolean;
        counts?: { discovered?: number };
        apiCalls?: Record<string, number>;
        throttles?: number;
        errors?: Array<{ operation?: string; code?: string; message?: string }>;
        /** Every error; `errors` lists the first 100. */
        errorCount?: number;
      }
    | null
    | undefined;
  if (!summary?.counts) return undefined;
  const calls = Object.values(summary.apiCalls ?? {}).reduce((sum, n) => sum + n, 0);
  const throttles = summary.throttles ? `, ${summary.throttles} throttled and retried` : '';
  const head = `first discovery: ${summary.counts.discovered ?? 0} federated APIs, ${calls} API Gateway calls${throttles}`;
  if (!summary.partial) return `${head}, complete`;
  const errors = (summary.errors ?? [])
    .slice(0, 3)
    .map((e) => `${e.operation ?? '?'}: ${e.code ?? 'error'}`)
    .join('; ');
  return `${head}, PARTIAL (${summary.errorCount ?? summary.errors?.length ?? 0} errors: ${errors})`;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The copy-paste commands printed at start, with a real API and plan of the catalog. */
export function formatCommands(
  runtime: Pick<LocalRuntime, 'relayUrl' | 'token' | 'lambdaUrl'> &
    Partial<Pick<LocalRuntime, 'awsEndpoint'>>,
  apis: readonly FederatedApi[],
): string {
  const example = [...apis]
    .sort((a, b) => b.plans.length - a.plans.length || a.name.localeCompare(b.name))
    .find((api) => api.plans.length > 0);
  const apiId = example?.id ?? '<api id>';
  const planId = example?.plans[0]?.id ?? '<plan id>';
  const connection = `--url ${runtime.relayUrl} --token ${runtime.token}`;
  const subscribePayload = JSON.stringify({
    action: 'subscribe',
    subscriptionId: 'sub-cli-1',
    apiId,
    planId,
    application: { id: 'app-1', name: 'Demo application' },
  });
  const unsubscribePayload = JSON.stringify({ action: 'unsubscribe', subscriptionId: 'sub-cli-1' });
  const invoke = (payload: string) =>
    `aws lambda invoke --endpoint-url ${runtime.lambdaUrl} --region us-east-1 --function-name subscriptions \\\n` +
    `      --cli-binary-format raw-in-base64-out --payload ${shellQuote(payload)} out.json && cat out.json`;
  const text = [
    'Control plane (the reference client, in another terminal):',
    `  npx apigw-fed connect ${connection}`,
    `  npx apigw-fed apis ${connection}`,
    `  npx apigw-fed subscribe ${connection} \\\n      --api ${apiId} --plan ${planId} --app-id app-1 --app-name 'Demo app' --subscription-id sub-demo-1`,
    `  npx apigw-fed unsubscribe ${connection} --subscription-id sub-demo-1`,
    '',
    `Operator (AWS CLI v2; dummy credentials are fine: export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing):`,
    `  ${invoke(subscribePayload)}`,
    `  ${invoke(unsubscribePayload)}`,
    '  (AWS CLI v1 has no --cli-binary-format option: leave it out, v1 sends the payload as is.)',
    '',
    "Gravitee APIM (the bridge, in place of Gravitee's AWS agent; docs/gravitee.md), with your APIM URL,",
    'service account token and integration id:',
    `  FED_RELAY_URL=${runtime.relayUrl} FED_RELAY_TOKEN=${runtime.token} \\`,
    '  gravitee_integration_connector_ws_endpoints_0=http://localhost:8083/integration-controller \\',
    '  gravitee_integration_connector_ws_headers_0_name=Authorization \\',
    "  gravitee_integration_connector_ws_headers_0_value='bearer <APIM service account token>' \\",
    '  gravitee_integration_providers_0_type=aws-api-gateway \\',
    '  gravitee_integration_providers_0_integrationId=<integration id> \\',
    '  npx apigw-fed gravitee',
    '',
    ...(runtime.awsEndpoint
      ? [
          'Change events (API Gateway write calls through the AWS endpoint reach a connected control plane in a second or so):',
          `  aws apigateway create-deployment --endpoint-url ${runtime.awsEndpoint} --region us-east-1 \\\n` +
            `      --rest-api-id ${example?.source.restApiId ?? '<rest api id>'} --stage-name ${example?.source.stageName ?? 'prod'}`,
          '',
        ]
      : []),
  ];
  return `${text.join('\n')}\n`;
}

/**
 * Runs the local agent until SIGINT/SIGTERM. Resolves with the exit code (the `apigw-fed` bin sets it as
 * `process.exitCode`); when run directly the process exits with it.
 */
export async function main(
  argv: readonly string[] = process.argv.slice(2),
  io: { out: (text: string) => void; err: (text: string) => void } = {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  },
): Promise<number> {
  let options: StartOptions;
  try {
    options = parseStartArgs(argv);
  } catch (error) {
    io.err(`apigw-fed start: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (options.help) {
    io.out(USAGE);
    return EXIT_OK;
  }

  let signalled: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return; // a second Ctrl-C while stopping: keep stopping
    signalled = signal;
    abort.abort();
    io.out(`\n${signal} received: stopping...\n`);
    wake?.();
  };
  // SIGHUP: the terminal went away.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, onSignal);

  // The SDK's notice that versions published after January 2027 need Node 22 says nothing about this run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const started = Date.now();
  let runtime: LocalRuntime | undefined;
  try {
    io.out('Starting the apigw-federation agent locally...\n');
    runtime = await startLocalRuntime({
      ...(options.relayPort === undefined ? {} : { relayPort: options.relayPort }),
      ...(options.lambdaPort === undefined ? {} : { lambdaPort: options.lambdaPort }),
      ...(options.awsPort === undefined ? {} : { awsPort: options.awsPort }),
      ...(options.scheduleSeconds === undefined ? {} : { scheduleSeconds: options.scheduleSeconds }),
      seed: options.seed,
      ...(options.motoFixes ? { motoFixes: true } : {}),
      signal: abort.signal,
      onProgress: (message) => io.out(`  - ${message}\n`),
      onDiscovery: (result) => {
        const counts = (result as { counts?: { upserted?: number; removed?: number } } | null)?.counts;
        if (counts && (counts.upserted || counts.removed)) {
          io.out(
            `[${new Date().toISOString().slice(11, 19)}] discovery: ${counts.upserted ?? 0} API(s) added or changed, ${counts.removed ?? 0} removed\n`,
          );
        }
      },
      onError: (what, error) =>
        io.err(`[local] ${what} failed: ${error instanceof Error ? error.message : String(error)}\n`),
    });
    if (signalled) {
      await runtime.stop();
      io.out('stopped.\n');
      return EXIT_OK;
    }
    const apis = await runtime.catalog();
    const first = formatFirstDiscovery(runtime.firstDiscovery);
    if (first) io.out(`  - ${first}\n`);
    const schedule = options.scheduleSeconds ?? DEFAULT_SCHEDULE_SECONDS;
    io.out(
      `\nDiscovered ${apis.length} federated API${apis.length === 1 ? '' : 's'} ` +
        `(discovery runs ${schedule > 0 ? `every ${schedule} s` : 'only at start'}):\n` +
        formatCatalog(apis) +
        '\n' +
        `Relay (WebSocket API):    ${runtime.relayUrl}\n` +
        `Relay token:              ${runtime.token}\n` +
        `Lambda Invoke endpoint:   ${runtime.lambdaUrl}   (functions: discovery, subscriptions)\n` +
        `AWS endpoint:             ${runtime.awsEndpoint}   (${describeAwsEndpoint(runtime)})\n` +
        '\n' +
        formatCommands(runtime, apis) +
        `ready in ${((Date.now() - started) / 1000).toFixed(1)} s — Ctrl-C to stop\n`,
    );
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (signalled) resolve();
    });
    await runtime.stop();
    io.out('stopped.\n');
    return EXIT_OK;
  } catch (error) {
    if (runtime) await runtime.stop().catch(() => undefined);
    if (signalled) {
      // Stopped while starting (startLocalRuntime stopped what it had started): not a failure.
      io.out('stopped.\n');
      return EXIT_OK;
    }
    if (error instanceof PortInUseError) {
      io.err(`apigw-fed start: ${error.message}\n`);
    } else {
      io.err(`apigw-fed start failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    return EXIT_FAILURE;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(EXIT_FAILURE);
    },
  );
}
