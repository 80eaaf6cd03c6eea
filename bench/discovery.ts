/**
 * Discovery figures of one scenario: first run against the theoretical minimum, rerun without change,
 * rerun after 5% of the federated stages were redeployed, the naive baseline on the same emulator, and
 * the per-run usage the cost model needs. Every discovery run happens in a fresh `node` process
 * (bundled `discovery-child.ts`), so its peak RSS is measured alone.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildSync } from 'esbuild';
import { redeployStage, type SeedDescription, type SeedResult } from '../emulator/seeder.js';
import type { OutboxEvent } from '../layers/federation-core/src/index.js';
import { runNaiveAgent } from './baseline.js';
import type { DiscoveryChildArgs, DiscoveryChildResult } from './discovery-child.js';
import {
  ACCOUNT_REGIONS,
  agentConfig,
  type BenchEnv,
  CREDENTIALS,
  LATENCY_MS,
  REGION,
  SCENARIOS,
  type ScenarioName,
  type Secrets,
  scenarioSeeds,
  seedScenario,
  THROTTLE,
} from './env.js';
import {
  addCounts,
  type CallCounts,
  idealSeconds,
  minimumFirstRun,
  minimumRerun,
  naiveRun,
  shapeOf,
} from './lib/minimum.js';
import { type Figure, figure } from './lib/report.js';
import { ratio, round } from './lib/stats.js';

const execFileAsync = promisify(execFile);
const OPERATIONS = ['GetRestApis', 'GetUsagePlans', 'GetStages', 'GetExport'] as const;
/** Share of federated stages redeployed before the third run. */
export const REDEPLOY_SHARE = 0.05;

/** Bundles the child once per benchmark run (plain node, no tsx loader in the measured process). */
export function bundleDiscoveryChild(outDir: string): string {
  const outfile = join(outDir, 'discovery-child.cjs');
  buildSync({
    entryPoints: [join(import.meta.dirname, 'discovery-child.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
  });
  return outfile;
}

export interface RunMeasure {
  readonly child: DiscoveryChildResult;
  /** API Gateway calls the proxy saw, by operation, and in all. */
  readonly calls: Record<string, number>;
  readonly totalCalls: number;
  readonly callsByAccountRegion: Record<string, number>;
  /** 429s the proxy's bucket answered. */
  readonly sent429: number;
  readonly peakArrivalRate: number;
  /** `<account>/<region>/<restApiId>/<stage>` of every GetExport. */
  readonly exported: string[];
}

export interface DiscoveryScenarioResult {
  readonly figures: Figure[];
  readonly details: Record<string, unknown>;
  /** Where the first run's outbox events are (for the relay benchmark). */
  readonly eventsFile: string;
  readonly tableName: string;
  readonly secrets: Secrets;
  readonly usage: {
    readonly noChange: DiscoveryChildResult;
    readonly changed: DiscoveryChildResult;
  };
}

export interface DiscoveryBenchOptions {
  readonly childBundle: string;
  readonly workDir: string;
  readonly progress: (message: string) => void;
}

export async function benchDiscovery(
  env: BenchEnv,
  scenario: ScenarioName,
  options: DiscoveryBenchOptions,
): Promise<DiscoveryScenarioResult> {
  const { progress } = options;
  const apis = SCENARIOS[scenario];
  await env.reset();
  const tableName = `ledger-${scenario.toLowerCase()}`;
  await env.createTable(tableName);
  const secrets = await env.createSecrets();
  const seeds = scenarioSeeds(apis);
  progress(`${scenario}: seeding ${apis} APIs over ${ACCOUNT_REGIONS.length} account-regions`);
  const seeded = await seedScenario(env, seeds);
  progress(
    `${scenario}: seeded (${seeded.reduce((s, r) => s + r.calls, 0)} calls, ${Math.round(Math.max(...seeded.map((r) => r.durationMs)) / 1000)} s)`,
  );

  const shapes = seeds.map(shapeOf);
  const minFirst = shapes.map(minimumFirstRun);
  const minFirstTotal = addCounts(minFirst);
  const config = agentConfig(tableName, secrets);
  const eventsFile = join(options.workDir, `events-${scenario}.json`);

  const run = async (label: string, wantEvents = false): Promise<RunMeasure> => {
    env.armProxy();
    env.proxy.resetCalls();
    progress(`${scenario}: discovery ${label}…`);
    // Diagnostics: BENCH_TRACE=<dir> writes the limiter's grants, the SDK's sends and the proxy's
    // arrivals of the first run (see bench/trace.ts).
    const traceDir = wantEvents ? process.env.BENCH_TRACE : undefined;
    const child = await runChild(options, {
      ...(traceDir ? { traceFile: join(traceDir, `trace-${scenario}-agent.json`) } : {}),
      proxyEndpoint: env.proxy.endpoint,
      motoEndpoint: env.moto.endpoint,
      region: REGION,
      credentials: { ...CREDENTIALS },
      config,
      ...(wantEvents ? { eventsFile } : {}),
      resultFile: join(options.workDir, `result-${scenario}-${label.replaceAll(/\W+/g, '-')}.json`),
    });
    const measure = measureCalls(env, child);
    if (traceDir) {
      writeFileSync(
        join(traceDir, `trace-${scenario}-proxy.json`),
        JSON.stringify(env.proxy.calls.list({ service: 'apigateway' })),
      );
    }
    progress(
      `${scenario}: discovery ${label}: ${measure.totalCalls} API Gateway calls in ${round(child.summary.durationMs / 1000, 1)} s, ${child.summary.counts.exported} exports, ${measure.sent429} 429s`,
    );
    return measure;
  };

  // 1. first run
  const first = await run('first run', true);
  const firstSeconds = first.child.summary.durationMs / 1000;
  const perArCalls = ACCOUNT_REGIONS.map((ar) => first.callsByAccountRegion[ar.key] ?? 0);
  const ideal = idealSeconds(
    minFirst.map((c) => c.total),
    THROTTLE,
    LATENCY_MS,
  );
  const surfacedThrottles = first.child.summary.errors.filter((e) => /THROTTL/i.test(e.code)).length;
  const byOp = (calls: Record<string, number>, min: CallCounts) =>
    OPERATIONS.map((op) => `${op} ${calls[op] ?? 0}/${min[op]}`).join(', ');

  const figures: Figure[] = [
    figure(
      `${scenario} discovery first run: API calls / theoretical minimum`,
      ratio(first.totalCalls, minFirstTotal.total, 3),
      'ratio',
      { op: '<=', value: 1.0 },
      `${first.totalCalls} / ${minFirstTotal.total}; by operation (actual/minimum): ${byOp(first.calls, minFirstTotal)}`,
    ),
    figure(
      `${scenario} discovery first run: wall time / ideal`,
      ratio(firstSeconds, ideal, 2),
      'ratio',
      { op: '<=', value: 1.1 },
      `${round(firstSeconds, 2)} s / ${round(ideal, 2)} s; ideal = max over account-regions of (minimum calls − burst ${THROTTLE.burst}) / ${THROTTLE.ratePerSecond} req/s + 3 dependent round trips × ${LATENCY_MS} ms`,
    ),
    figure(
      `${scenario} discovery first run: 429s answered by the throttle`,
      first.sent429,
      'count',
      { op: '<=', value: 0 },
      `proxy bucket ${THROTTLE.ratePerSecond}/s burst ${THROTTLE.burst} per account-region; retried by our policy: ${first.child.summary.throttles}; peak arrival rate ${round(first.peakArrivalRate, 1)}/s (5 s window)`,
    ),
    figure(
      `${scenario} discovery first run: 429s escaped (surfaced as errors)`,
      surfacedThrottles,
      'count',
      { op: '==', value: 0 },
      `errors in the run summary: ${first.child.summary.errors.length}; partial: ${first.child.summary.partial}`,
    ),
  ];

  // 2. rerun, nothing changed
  const same = await run('rerun (no change)');
  figures.push(
    figure(
      `${scenario} rerun, no change: API calls / first run`,
      ratio(same.totalCalls, first.totalCalls, 3),
      'ratio',
      { op: '<=', value: 0.2 },
      `${same.totalCalls} / ${first.totalCalls}; floor without exports: ${addCounts(shapes.map((s) => minimumRerun(s, 0))).total} (GetStages per federable API is how a redeploy is seen)`,
    ),
    figure(
      `${scenario} rerun, no change: wall time / first run`,
      ratio(same.child.summary.durationMs, first.child.summary.durationMs, 3),
      'ratio',
      { op: '<=', value: 0.2 },
      `${round(same.child.summary.durationMs / 1000, 2)} s / ${round(firstSeconds, 2)} s`,
    ),
    figure(
      `${scenario} rerun, no change: exports`,
      same.calls.GetExport ?? 0,
      'count',
      { op: '==', value: 0 },
      `events appended: ${same.child.events}`,
    ),
  );

  // 3. rerun after 5% of the federated stages were redeployed
  const changed = await redeploy(env, seeds, seeded, progress, scenario);
  const afterChange = await run('rerun (5% redeployed)');
  const exportedSet = new Set(afterChange.exported);
  const sameSet = exportedSet.size === changed.length && changed.every((k) => exportedSet.has(k));
  const exportsFigure = figure(
    `${scenario} rerun, 5% stages redeployed: exports − changed stages`,
    (afterChange.calls.GetExport ?? 0) - changed.length,
    'count',
    { op: '==', value: 0 },
    `${afterChange.calls.GetExport ?? 0} exports for ${changed.length} redeployed stages; exported set equals the redeployed set: ${sameSet ? 'yes' : 'no'}; api.upserted events: ${afterChange.child.summary.counts.upserted}`,
  );
  figures.push({ ...exportsFigure, pass: exportsFigure.pass === true && sameSet });

  // 4. the naive baseline, same emulator, same proxy
  env.armProxy();
  env.proxy.resetCalls();
  progress(`${scenario}: naive baseline run…`);
  const naive = await runNaiveAgent({
    endpoint: env.proxy.endpoint,
    region: REGION,
    credentials: { ...CREDENTIALS },
    targets: ACCOUNT_REGIONS.map((ar) => ({
      region: ar.region,
      ...(ar.roleArn ? { roleArn: ar.roleArn } : {}),
    })),
  });
  const naiveCalls = env.proxy.calls.byOperation({ service: 'apigateway' });
  const naiveTotal = Object.values(naiveCalls).reduce((s, n) => s + n, 0);
  const naiveSent429 = env.proxy.stats.throttle.sent429;
  progress(
    `${scenario}: naive baseline: ${naiveTotal} calls in ${round(naive.durationMs / 1000, 1)} s, ${naiveSent429} 429s, ${naive.failures} failed operations`,
  );
  const naiveExpected = addCounts(shapes.map(naiveRun));
  figures.push(
    figure(
      `${scenario} first run vs naive baseline: API calls`,
      ratio(first.totalCalls, naiveTotal, 3),
      'ratio',
      undefined,
      `${first.totalCalls} / ${naiveTotal} (baseline by operation: ${byOp(naiveCalls, naiveExpected)}; baseline 429s ${naiveSent429}, failed operations ${naive.failures}, exported ${naive.exported}/${naive.federated})`,
    ),
    figure(
      `${scenario} first run vs naive baseline: wall time`,
      ratio(first.child.summary.durationMs, naive.durationMs, 3),
      'ratio',
      undefined,
      `${round(firstSeconds, 2)} s / ${round(naive.durationMs / 1000, 2)} s`,
    ),
    figure(
      `${scenario} rerun (no change) vs naive baseline: API calls`,
      ratio(same.totalCalls, naiveTotal, 3),
      'ratio',
      undefined,
      `${same.totalCalls} / ${naiveTotal}`,
    ),
    figure(
      `${scenario} rerun (no change) vs naive baseline: wall time`,
      ratio(same.child.summary.durationMs, naive.durationMs, 3),
      'ratio',
      undefined,
      `${round(same.child.summary.durationMs / 1000, 2)} s / ${round(naive.durationMs / 1000, 2)} s`,
    ),
  );

  // 5. memory of the first run (the largest)
  const rssMiB = round(first.child.maxRssKiB / 1024, 1);
  figures.push(
    figure(
      `${scenario} discovery first run: peak RSS`,
      rssMiB,
      'MiB',
      scenario === 'L' ? { op: '<=', value: 256 } : undefined,
      'process.resourceUsage().maxRSS of the discovery process (plain node, bundled core + SDK)',
    ),
  );

  return {
    figures,
    eventsFile,
    tableName,
    secrets,
    usage: { noChange: same.child, changed: afterChange.child },
    details: {
      apis,
      accountRegions: ACCOUNT_REGIONS.map((ar, i) => ({
        ...ar,
        shape: shapes[i],
        minimumFirstRun: minFirst[i],
      })),
      first: summarize(first),
      firstCallsPerAccountRegion: perArCalls,
      idealSeconds: ideal,
      rerunNoChange: summarize(same),
      rerunChanged: {
        ...summarize(afterChange),
        redeployed: changed.length,
        exportedSetEqualsRedeployed: sameSet,
      },
      naive: {
        ...naive,
        calls: naiveCalls,
        totalCalls: naiveTotal,
        sent429: naiveSent429,
        expectedWithoutFailures: naiveExpected,
      },
    },
  };
}

function summarize(m: RunMeasure) {
  return {
    calls: m.calls,
    totalCalls: m.totalCalls,
    callsByAccountRegion: m.callsByAccountRegion,
    sent429: m.sent429,
    peakArrivalRate: m.peakArrivalRate,
    durationMs: m.child.summary.durationMs,
    runMs: m.child.runMs,
    counts: m.child.summary.counts,
    throttlesRetried: m.child.summary.throttles,
    errors: m.child.summary.errors.length,
    partial: m.child.summary.partial,
    events: m.child.events,
    maxRssKiB: m.child.maxRssKiB,
    dynamo: m.child.capacity,
  };
}

async function runChild(
  options: DiscoveryBenchOptions,
  args: DiscoveryChildArgs,
): Promise<DiscoveryChildResult> {
  const argsFile = `${args.resultFile}.args.json`;
  writeFileSync(argsFile, JSON.stringify(args));
  try {
    await execFileAsync(process.execPath, [options.childBundle, argsFile], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 20 * 60_000,
    });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`discovery child failed: ${e.stderr?.slice(-3000) ?? e.message}`);
  }
  return JSON.parse(readFileSync(args.resultFile, 'utf8')) as DiscoveryChildResult;
}

function measureCalls(env: BenchEnv, child: DiscoveryChildResult): RunMeasure {
  const filter = { service: 'apigateway' };
  const calls = env.proxy.calls.byOperation(filter);
  const stats = env.proxy.stats.throttle;
  const exported = env.proxy.calls.list({ ...filter, operation: 'GetExport' }).map((c) => {
    const [, , restApiId, , stage] = c.path.split('/').map((p) => decodeURIComponent(p));
    return `${c.accountId}/${c.region}/${restApiId}/${stage}`;
  });
  return {
    child,
    calls,
    totalCalls: Object.values(calls).reduce((s, n) => s + n, 0),
    callsByAccountRegion: env.proxy.calls.byAccountRegion(filter),
    sent429: stats.sent429,
    peakArrivalRate: stats.peakSustainedRate,
    exported,
  };
}

/**
 * Redeploys 5% of each account-region's federated stages (every 20th, at least one) straight in moto.
 * Returns their `<account>/<region>/<restApiId>/<stage>` keys.
 */
async function redeploy(
  env: BenchEnv,
  seeds: readonly SeedDescription[],
  seeded: readonly SeedResult[],
  progress: (message: string) => void,
  scenario: string,
): Promise<string[]> {
  const keys: string[] = [];
  await Promise.all(
    ACCOUNT_REGIONS.map(async (ar, i) => {
      const description = seeds[i]!;
      const onPlan = new Set(
        (description.usagePlans ?? []).flatMap((p) => p.stages.map((s) => `${s.api}/${s.stage}`)),
      );
      const federated = description.apis.flatMap((api) =>
        api.stages
          .filter((stage) => onPlan.has(`${api.key}/${stage}`))
          .map((stage) => ({ api: api.key, stage })),
      );
      const step = Math.round(1 / REDEPLOY_SHARE);
      const picked = federated.filter((_, index) => index % step === 0);
      const client = await env.apiGatewayDirect(ar);
      for (const { api, stage } of picked) {
        const restApiId = seeded[i]!.apis[api]!.restApiId;
        await redeployStage(client, restApiId, stage);
        keys.push(`${ar.accountId}/${ar.region}/${restApiId}/${stage}`);
      }
    }),
  );
  progress(`${scenario}: redeployed ${keys.length} stages`);
  return keys;
}

/** A temporary folder for the run's scratch files (args, child results, events). */
export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'apigw-fed-bench-'));
}

/** The first run's outbox events of a scenario (written by its child). */
export function readEvents(file: string): OutboxEvent[] {
  return JSON.parse(readFileSync(file, 'utf8')) as OutboxEvent[];
}
