/**
 * `npm run bench [-- --scenario S|M|L|all|change-events] [--quick] [--skip footprint,subscriptions,relay,sync,gravitee,org]
 *   [--only gravitee|org] [--gravitee-apis N]`
 *
 * Measures, side by side in one run on the emulated AWS (moto behind the fidelity proxy: API Gateway
 * paging, 10 req/s burst 40 per account-region, +20 ms per API Gateway call), what users pay for:
 * discovery calls and time against the theoretical minimum and a naive baseline, incremental reruns,
 * subscription latency, relay fan-out, a 10,000-API `sync`, bundle sizes and cold init, the Gravitee bridge's DISCOVER reply
 * time and memory for 10,000 APIs, and a monthly cost model.
 * Prints a markdown table and writes `bench/results/<YYYY-MM-DDTHH-MM-SS>.json`. Targets are reported,
 * never asserted.
 */
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchChangeEvents, CHANGES } from './change-events.js';
import {
  benchDiscovery,
  bundleDiscoveryChild,
  type DiscoveryScenarioResult,
  scratchDir,
} from './discovery.js';
import { SCENARIOS, type ScenarioName, startBenchEnv } from './env.js';
import { benchFootprint } from './footprint.js';
import { benchGravitee, GRAVITEE_APIS } from './gravitee.js';
import {
  containerMonthlyCost,
  PRICES,
  PRICES_AS_OF,
  runsPerMonth,
  serverlessMonthlyCost,
} from './lib/cost.js';
import {
  type Figure,
  figure,
  gitCommit,
  machine,
  markdownTable,
  resultStamp,
  writeResults,
} from './lib/report.js';
import { round } from './lib/stats.js';
import { benchOrganization } from './organization.js';
import { benchRelay } from './relay.js';
import { benchSubscriptions } from './subscriptions.js';
import { benchSync } from './sync.js';

const REPO_ROOT = resolve(import.meta.dirname, '..');
/** Memory of the discovery function in the CDK app (infra/constructs/discovery.ts). */
export const DISCOVERY_MEMORY_MB = 512;
export const SCHEDULE_MINUTES = 15;

function parseCli() {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      quick: { type: 'boolean', default: false },
      skip: { type: 'string', default: '' },
      only: { type: 'string', default: '' },
      'gravitee-apis': { type: 'string', default: String(GRAVITEE_APIS) },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--scenario S|M|L|all|change-events] [--quick] [--skip footprint,subscriptions,relay,sync,gravitee,org] [--only gravitee|org] [--gravitee-apis N]',
    );
    process.exit(0);
  }
  const wanted = values.scenario.toUpperCase();
  let scenarios: ScenarioName[];
  if (values.quick) scenarios = ['S', 'M'];
  else if (wanted === 'ALL') scenarios = ['S', 'M', 'L'];
  else if (wanted in SCENARIOS) scenarios = [wanted as ScenarioName];
  else throw new Error(`--scenario must be S, M, L or all, got ${values.scenario}`);
  const skip = new Set(
    values.skip
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  if (values.only && values.only !== 'gravitee' && values.only !== 'org') {
    throw new Error(`--only takes gravitee or org, got ${values.only}`);
  }
  const graviteeApis = Number(values['gravitee-apis']);
  if (!Number.isInteger(graviteeApis) || graviteeApis < 1) {
    throw new Error(`--gravitee-apis must be a positive integer, got ${values['gravitee-apis']}`);
  }
  return { scenarios, skip, quick: values.quick, only: values.only, graviteeApis };
}

/** `--scenario change-events`: that scenario alone (it starts its own `npm start`). */
async function mainChangeEvents(): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  const progress = (message: string) =>
    process.stderr.write(
      `[bench ${String(Math.round((performance.now() - t0) / 1000)).padStart(4)} s] ${message}\n`,
    );
  const { figures, details } = await benchChangeEvents(progress);
  const stamp = resultStamp(started);
  const file = writeResults(join(REPO_ROOT, 'bench', 'results'), stamp, {
    startedAt: started.toISOString(),
    durationSeconds: round((performance.now() - t0) / 1000, 1),
    scenario: { scenarios: [{ name: 'change-events', changes: CHANGES }] },
    machine: machine(),
    commit: gitCommit(REPO_ROOT),
    figures,
    details: { changeEvents: details },
  });
  console.log(`## Benchmark (change-events) — ${stamp}\n`);
  console.log(markdownTable(figures));
  console.log(`\nResults: ${file}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('change-events')) return mainChangeEvents();
  const { scenarios: wantedScenarios, skip, only, graviteeApis } = parseCli();
  const scenarios: ScenarioName[] = only ? [] : wantedScenarios;
  const started = new Date();
  const t0 = performance.now();
  const progress = (message: string) =>
    process.stderr.write(
      `[bench ${String(Math.round((performance.now() - t0) / 1000)).padStart(4)} s] ${message}\n`,
    );
  const work = scratchDir();
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};

  if (only === 'org' || (!only && !skip.has('org'))) {
    const org = await benchOrganization(progress);
    figures.push(...org.figures);
    details.organization = org.details;
  }
  if (only !== 'org' && !skip.has('gravitee')) {
    const gravitee = await benchGravitee(work, progress, graviteeApis);
    figures.push(...gravitee.figures);
    details.gravitee = gravitee.details;
  }

  if (!only && !skip.has('footprint')) {
    const footprint = await benchFootprint(join(work, 'footprint'), progress);
    figures.push(...footprint.figures);
    details.footprint = footprint.details;
  }

  const discovery = new Map<ScenarioName, DiscoveryScenarioResult>();
  if (scenarios.length > 0) progress('starting moto and the fidelity proxy');
  const env = scenarios.length > 0 ? await startBenchEnv() : undefined;
  try {
    const childBundle = env ? bundleDiscoveryChild(work) : '';
    for (const scenario of env ? scenarios : []) {
      const result = await benchDiscovery(env!, scenario, { childBundle, workDir: work, progress });
      discovery.set(scenario, result);
      figures.push(...result.figures);
      details[`discovery${scenario}`] = result.details;
      // subscriptions and relay need a discovered catalog: measured on the smallest scenario, while
      // its state is still in moto
      if (scenario === scenarios[0]) {
        if (!skip.has('subscriptions')) {
          const subs = await benchSubscriptions(env!, result, progress);
          figures.push(...subs.figures);
          details.subscriptions = subs.details;
        }
        if (!skip.has('relay')) {
          const relay = await benchRelay(env!, result, progress);
          figures.push(...relay.figures);
          details.relay = relay.details;
        }
        if (!skip.has('sync')) {
          const sync = await benchSync(env!, progress);
          figures.push(...sync.figures);
          details.sync = sync.details;
        }
      }
    }
  } finally {
    await env?.stop();
  }

  // Cost model from the measured runs.
  const costDetails: Record<string, unknown> = {};
  for (const [scenario, result] of discovery) {
    for (const [label, usage] of [
      ['no change', result.usage.noChange],
      ['5% redeployed', result.usage.changed],
    ] as const) {
      const cost = serverlessMonthlyCost({
        scheduleMinutes: SCHEDULE_MINUTES,
        run: {
          durationMs: usage.summary.durationMs,
          memoryMb: DISCOVERY_MEMORY_MB,
          writeRequestUnits: usage.capacity.wru,
          readRequestUnits: usage.capacity.rru,
          webSocketMessages: usage.events,
        },
      });
      figures.push(
        figure(
          `${scenario} monthly cost, serverless, every run like "${label}"`,
          round(cost.total, 2),
          'USD',
          undefined,
          `Lambda ${round(cost.lambdaCompute + cost.lambdaRequests, 2)} (${round(usage.summary.durationMs / 1000, 1)} s × ${DISCOVERY_MEMORY_MB} MB × ${runsPerMonth(SCHEDULE_MINUTES)} runs) + DynamoDB ${round(cost.dynamoDb, 2)} (${round(usage.capacity.wru)} WRU, ${round(usage.capacity.rru)} RRU per run) + WebSocket ${round(cost.webSocket, 2)} (${usage.events} messages per run, 1 connection all month)`,
        ),
      );
      costDetails[`${scenario} ${label}`] = {
        ...cost,
        usage: { durationMs: usage.summary.durationMs, capacity: usage.capacity, events: usage.events },
      };
    }
  }
  const container = containerMonthlyCost(0.25, 0.5);
  figures.push(
    figure(
      'monthly cost, always-on container agent (256–512 MiB)',
      round(container, 2),
      'USD',
      undefined,
      'Fargate Linux/ARM, smallest task that holds 256–512 MiB: 0.25 vCPU + 0.5 GB × 730 h (compute only: no load balancer, logs or IPv4)',
    ),
  );
  details.cost = {
    pricesAsOf: PRICES_AS_OF,
    region: 'us-east-1',
    prices: PRICES,
    scheduleMinutes: SCHEDULE_MINUTES,
    discoveryMemoryMb: DISCOVERY_MEMORY_MB,
    serverless: costDetails,
    containerMonthly: container,
  };

  const durationSeconds = round((performance.now() - t0) / 1000, 1);
  const stamp = resultStamp(started);
  const file = writeResults(join(REPO_ROOT, 'bench', 'results'), stamp, {
    startedAt: started.toISOString(),
    durationSeconds,
    scenario: {
      scenarios: scenarios.map((s) => ({ name: s, apis: SCENARIOS[s] })),
      accountRegions:
        '2 accounts × 2 regions (us-east-1, eu-west-1); the second account through sts:AssumeRole',
      seed: 'per account-region: APIs with stages dev and prod, one usage plan per stage on 90% of the APIs (10% on no plan)',
      proxy: { throttle: { ratePerSecond: 10, burst: 40, per: 'account-region' }, addedLatencyMs: 20 },
    },
    machine: machine(),
    commit: gitCommit(REPO_ROOT),
    figures,
    details,
  });
  rmSync(work, { recursive: true, force: true });

  console.log(`## Benchmark (${scenarios.join(', ')}) — ${stamp}\n`);
  const m = machine();
  console.log(
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}; ${durationSeconds} s in all.\n`,
  );
  console.log(markdownTable(figures));
  console.log(`\nPrices (us-east-1, as of ${PRICES_AS_OF}):`);
  for (const p of Object.values(PRICES))
    console.log(`- ${Number(p.value.toPrecision(6))} ${p.unit} — ${p.source}`);
  console.log(`\nResults: ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
