/**
 * `apigw-fed` control-plane commands: a reference client of the relay on the command line.
 *
 *   connect     --url --token [--json]   stream events (keeps the catalog in sync, reconnects)
 *   apis        --url --token [--json]   list APIs and plans
 *   discover    --url --token [--json]   run discovery now, print the events and the run summary
 *   subscribe   --url --token --api --plan --app-id --app-name [--subscription-id] [--json]
 *   unsubscribe --url --token --subscription-id [--json]
 *   ping        --url --token [--json]
 *
 * `--url` defaults to FED_RELAY_URL, `--token` to FED_RELAY_TOKEN. `--json` prints one JSON object a
 * line. Exit code 0 on success, 1 when the agent answers FAILED or the relay cannot be reached, 2 on a
 * usage error.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { EventMessage, Reply } from '../layers/federation-core/src/protocol/protocol.js';
import { type CatalogApi, ClientError, ControlPlaneClient } from './control-plane-client.js';

export interface CliIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  readonly env: Record<string, string | undefined>;
  /** Resolves when the user asks `connect` to stop (default: SIGINT/SIGTERM). */
  readonly untilStopped?: () => Promise<void>;
}

const USAGE = `usage: apigw-fed <command> [options]

commands:
  connect       stream events as they arrive (Ctrl-C to stop)
  apis          list the federated APIs and their plans
  discover      run discovery now and print the run summary
  subscribe     --api <apiId> --plan <planId> --app-id <id> --app-name <name> [--subscription-id <id>]
  unsubscribe   --subscription-id <id>
  ping          agent id, version, sources, last run, connections

options:
  --url <wss://…>    relay URL (or FED_RELAY_URL)
  --token <token>    bearer token (or FED_RELAY_TOKEN)
  --json             one JSON object a line
  --timeout <sec>    reply timeout (default 120)
`;

const COMMANDS = new Set(['connect', 'apis', 'discover', 'subscribe', 'unsubscribe', 'ping']);

function defaultIo(): CliIo {
  return {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    untilStopped: () =>
      new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      }),
  };
}

/** Runs one CLI command; resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || !COMMANDS.has(command)) {
    (command && command !== '--help' && command !== '-h' ? io.stderr : io.stdout)(USAGE);
    return command && command !== '--help' && command !== '-h' ? 2 : 0;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...rest],
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        api: { type: 'string' },
        plan: { type: 'string' },
        'app-id': { type: 'string' },
        'app-name': { type: 'string' },
        'subscription-id': { type: 'string' },
        'api-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const url = (values.url as string | undefined) ?? io.env.FED_RELAY_URL;
  const token = (values.token as string | undefined) ?? io.env.FED_RELAY_TOKEN;
  const missing = [!url && '--url (or FED_RELAY_URL)', !token && '--token (or FED_RELAY_TOKEN)'].filter(
    Boolean,
  );
  if (command === 'subscribe') {
    for (const flag of ['api', 'plan', 'app-id', 'app-name']) if (!values[flag]) missing.push(`--${flag}`);
  }
  if (command === 'unsubscribe' && !values['subscription-id']) missing.push('--subscription-id');
  if (missing.length > 0) {
    io.stderr(`${command}: missing ${missing.join(', ')}`);
    return 2;
  }
  const json = values.json === true;
  const timeoutMs = values.timeout ? Number(values.timeout) * 1000 : undefined;
  if (timeoutMs !== undefined && !(timeoutMs > 0)) {
    io.stderr(`--timeout: expected a positive number of seconds, received ${String(values.timeout)}`);
    return 2;
  }
  const print = (value: unknown, human: string) => io.stdout(json ? JSON.stringify(value) : human);

  const streaming = command === 'connect';
  const client = new ControlPlaneClient({
    url: url as string,
    token: token as string,
    syncOnConnect: command === 'connect' || command === 'apis',
    reconnect: streaming ? {} : false,
    ...(timeoutMs ? { requestTimeoutMs: timeoutMs } : {}),
  });
  client.on('error', (error: Error) => io.stderr(`error: ${error.message}`));
  if (streaming || command === 'discover') {
    client.on('event', (event: EventMessage) => print(event, describeEvent(event)));
  }
  let stopping = false;
  if (streaming) {
    client.on('close', ({ code }: { code: number }) => {
      if (!stopping) io.stderr(`disconnected (${code})`);
    });
    client.on('reconnecting', ({ delayMs }: { delayMs: number }) =>
      io.stderr(`reconnecting in ${delayMs} ms`),
    );
  }

  try {
    await client.connect();
  } catch (error) {
    io.stderr(error instanceof ClientError ? error.message : String(error));
    return 1;
  }
  try {
    switch (command) {
      case 'connect':
        io.stderr(`connected to ${url}; Ctrl-C to stop`);
        await (io.untilStopped ?? defaultIo().untilStopped)?.();
        stopping = true;
        return 0;
      case 'apis':
        printCatalog([...client.catalog.values()], json, io);
        return 0;
      case 'discover':
        return report(
          await client.request({ action: 'discover' }),
          json,
          io,
          (p) => `discovery done: ${summary(p)}`,
        );
      case 'subscribe':
        return report(
          await client.request({
            action: 'subscribe',
            subscriptionId: (values['subscription-id'] as string | undefined) ?? randomUUID(),
            apiId: values.api as string,
            planId: values.plan as string,
            application: { id: values['app-id'] as string, name: values['app-name'] as string },
            ...(values['api-key'] ? { apiKey: values['api-key'] as string } : {}),
          }),
          json,
          io,
          (p) => formatFields(p),
        );
      case 'unsubscribe':
        return report(
          await client.request({
            action: 'unsubscribe',
            subscriptionId: values['subscription-id'] as string,
          }),
          json,
          io,
          (p) => formatFields(p),
        );
      case 'ping':
        return report(await client.request({ action: 'ping' }), json, io, (p) => {
          const { lastRun, ...rest } = (p ?? {}) as Record<string, unknown>;
          const run = lastRun as { finishedAt?: string } | null | undefined;
          return `${formatFields(rest)}\nlastRun: ${run ? `${run.finishedAt ?? ''} ${summary(run)}`.trim() : 'none yet'}`;
        });
      default:
        return 2;
    }
  } catch (error) {
    io.stderr(error instanceof Error ? error.message : String(error));
    return 1;
  } finally {
    await client.close();
  }
}

function report(reply: Reply, json: boolean, io: CliIo, human: (payload: unknown) => string): number {
  if (json) io.stdout(JSON.stringify(reply));
  if (reply.status === 'FAILED') {
    if (!json) io.stderr(`FAILED ${reply.error?.code}: ${reply.error?.message}`);
    return 1;
  }
  if (!json) io.stdout(human(reply.payload));
  return 0;
}

function describeEvent(event: EventMessage): string {
  const p = event.payload as Record<string, unknown>;
  const seq = event.seq > 0 ? `#${event.seq} ` : '';
  switch (event.event) {
    case 'api.upserted': {
      const plans = (p.plans as { name: string }[]).map((x) => x.name).join(', ') || 'no plan';
      return `${seq}api.upserted ${p.name} (${p.version}) ${p.id} [${plans}]`;
    }
    case 'api.removed':
      return `${seq}api.removed ${p.id}`;
    case 'plan.removed':
      return `${seq}plan.removed ${p.planId} of ${p.apiId} (${(p.subscriptionIds as string[]).length} subscriptions)`;
    case 'subscription.revoked':
      return `${seq}subscription.revoked ${p.subscriptionId} (${p.reason})`;
    case 'discovery.completed':
      return `${seq}discovery.completed ${summary(p)}`;
    case 'sync.completed':
      return `sync.completed at #${p.seq}${p.snapshot ? ' (snapshot)' : ''}`;
    case 'hello':
      return `hello from ${p.agentId} ${p.version} (${p.provider})`;
  }
}

/** A run summary in one line: counts, account-regions, accounts without the role, duration, PARTIAL. */
export function summary(payload: unknown): string {
  if (typeof payload !== 'object' || payload === null) return String(payload ?? '');
  const p = payload as Record<string, unknown>;
  const counts = (p.counts ?? p) as Record<string, unknown>;
  const parts = ['discovered', 'upserted', 'removed', 'unchanged']
    .filter((k) => typeof counts[k] === 'number')
    .map((k) => `${k} ${counts[k]}`);
  const regions = accountRegions(p);
  if (regions) parts.push(regions);
  const denied = withoutRole(p);
  if (denied) parts.push(denied);
  if (typeof p.durationMs === 'number') parts.push(`${p.durationMs} ms`);
  if (p.partial === true) parts.push('PARTIAL');
  return parts.join(', ') || JSON.stringify(payload);
}

/**
 * `1798 account-regions (2 partial, 1 failed)`: all of them are counted (`accountRegionCount`,
 * `accountRegionsByStatus`) while `accountRegions` lists at most 500; summaries of older agents have
 * only the list.
 */
function accountRegions(p: Record<string, unknown>): string | undefined {
  const listed = Array.isArray(p.accountRegions) ? (p.accountRegions as { status?: unknown }[]) : undefined;
  const count = typeof p.accountRegionCount === 'number' ? p.accountRegionCount : listed?.length;
  if (count === undefined) return undefined;
  let byStatus = p.accountRegionsByStatus as Record<string, number> | undefined;
  if (typeof byStatus !== 'object' || byStatus === null) {
    byStatus = {};
    for (const ar of listed ?? []) {
      const status = String(ar.status);
      byStatus[status] = (byStatus[status] ?? 0) + 1;
    }
  }
  const notComplete = Object.entries(byStatus)
    .filter(([status, n]) => status !== 'complete' && n > 0)
    .map(([status, n]) => `${n} ${status}`);
  const noun = count === 1 ? 'account-region' : 'account-regions';
  return `${count} ${noun}${notComplete.length > 0 ? ` (${notComplete.join(', ')})` : ''}`;
}

/**
 * `12000 accounts without the role`: all of them are counted (`organization.withoutRoleCount`) while
 * `organization.withoutRole` lists at most 1,000; summaries of older agents have only the list.
 */
function withoutRole(p: Record<string, unknown>): string | undefined {
  const org = p.organization as { withoutRole?: unknown; withoutRoleCount?: unknown } | undefined;
  if (typeof org !== 'object' || org === null) return undefined;
  const count =
    typeof org.withoutRoleCount === 'number'
      ? org.withoutRoleCount
      : Array.isArray(org.withoutRole)
        ? org.withoutRole.length
        : 0;
  if (count === 0) return undefined;
  return `${count} ${count === 1 ? 'account' : 'accounts'} without the role`;
}

function formatFields(payload: unknown): string {
  if (typeof payload !== 'object' || payload === null) return String(payload ?? 'ok');
  return Object.entries(payload)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n');
}

function printCatalog(apis: CatalogApi[], json: boolean, io: CliIo): void {
  apis.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  if (json) {
    for (const api of apis) {
      const { definition, ...rest } = api;
      io.stdout(
        JSON.stringify({
          ...rest,
          ...(definition ? { definition: { format: definition.format, sha256: definition.sha256 } } : {}),
        }),
      );
    }
    return;
  }
  if (apis.length === 0) {
    io.stdout('No federated APIs.');
    return;
  }
  const rows = apis.flatMap((api) =>
    (api.plans.length > 0 ? api.plans : [undefined]).map((plan) => [
      api.name,
      api.version,
      api.id,
      plan ? plan.name : '-',
      plan ? plan.id : '-',
    ]),
  );
  const header = ['API', 'STAGE', 'API ID', 'PLAN', 'PLAN ID'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  io.stdout(line(header));
  for (const row of rows) io.stdout(line(row));
}
