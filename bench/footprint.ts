/**
 * Footprint: each function bundled exactly as the CDK construct bundles it (esbuild, CommonJS, minified,
 * `@apigw-federation/core` and zod external), the layer built by its own build script (the core with the
 * AWS SDK clients bundled in, and zod), and the cold init of each bundled handler: `require` of the
 * bundle in a fresh `node` process, the layer alone on NODE_PATH as on Lambda (no SDK from anywhere
 * else), median of 10.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildSync } from 'esbuild';
import { EXTERNAL_MODULES, FUNCTION_NAMES } from '../infra/constructs/federation-function.js';
import { buildCoreLayer } from '../layers/federation-core/build.js';
import { type Figure, figure } from './lib/report.js';
import { median, round } from './lib/stats.js';

const execFileAsync = promisify(execFile);
const REPO_ROOT = resolve(import.meta.dirname, '..');
export const COLD_INIT_SAMPLES = 10;

/** Environment a handler's module scope needs (loadConfig); no secret values. */
const HANDLER_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  FED_TABLE_NAME: 'bench-ledger',
  FED_CONNECTIONS_URL: 'http://127.0.0.1:9/local',
  FED_DISCOVERY_FUNCTION: 'discovery',
  FED_SUBSCRIPTIONS_FUNCTION: 'subscriptions',
  POWERTOOLS_METRICS_NAMESPACE: 'ApigwFederation',
};

/** Measures `require(bundle)` inside the fresh process, in ms, and prints it. */
const PROBE = `
const t0 = performance.now();
const mod = require(process.argv[1]);
const ms = performance.now() - t0;
if (typeof mod.handler !== 'function') { console.error('no handler export'); process.exit(2); }
process.stdout.write(JSON.stringify({ ms }));
`;

export interface FootprintResult {
  readonly figures: Figure[];
  readonly details: Record<string, unknown>;
}

export async function benchFootprint(
  outDir: string,
  progress: (m: string) => void,
): Promise<FootprintResult> {
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  progress('footprint: building the layer and bundling the functions');
  const layer = buildCoreLayer(join(outDir, 'layer'));
  const layerNodePath = join(layer.outDir, 'nodejs', 'node_modules');
  figures.push(
    figure(
      'layer: minified bytes (index.js)',
      round(layer.bundleBytes / 1024, 1),
      'KiB',
      { op: '<=', value: 1536 },
      'layers/federation-core/build.ts output (the core with the AWS SDK clients it uses), without the source map',
    ),
  );
  const sharedBytes = Object.values(layer.sharedBytes).reduce((a, b) => a + b, 0);
  figures.push(
    figure(
      'layer: minified bytes in all (core + zod)',
      round((layer.bundleBytes + sharedBytes) / 1024, 1),
      'KiB',
      { op: '<=', value: 1536 },
      'every index.js of the layer, without source maps',
    ),
  );
  details.layerBytes = layer.bundleBytes;
  details.sharedBytes = layer.sharedBytes;

  const functionsDir = join(outDir, 'functions');
  mkdirSync(functionsDir, { recursive: true });
  for (const name of FUNCTION_NAMES) {
    const outfile = join(functionsDir, name, 'index.js');
    buildSync({
      entryPoints: [join(REPO_ROOT, 'functions', name, 'handler.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      minify: true,
      external: [...EXTERNAL_MODULES],
      logLevel: 'error',
    });
    const bytes = statSync(outfile).size;
    figures.push(
      figure(
        `function ${name}: minified bytes`,
        round(bytes / 1024, 1),
        'KiB',
        { op: '<=', value: 100 },
        'CJS, minified, the core and zod external (as the CDK construct bundles it)',
      ),
    );

    const samples: number[] = [];
    for (let i = 0; i < COLD_INIT_SAMPLES; i++) {
      const { stdout } = await execFileAsync(process.execPath, ['-e', PROBE, outfile], {
        env: {
          PATH: process.env.PATH ?? '',
          ...HANDLER_ENV,
          // The layer as on Lambda (/opt/nodejs/node_modules); the SDK is in it, nothing else resolves.
          NODE_PATH: layerNodePath,
        },
      });
      samples.push((JSON.parse(stdout) as { ms: number }).ms);
    }
    const med = round(median(samples), 1);
    figures.push(
      figure(
        `function ${name}: cold init (median of ${COLD_INIT_SAMPLES})`,
        med,
        'ms',
        { op: '<=', value: 150 },
        'require() of the bundle in a fresh node process, the layer (with the SDK) alone on NODE_PATH',
      ),
    );
    details[name] = { bytes, coldInitMs: samples.map((s) => round(s, 1)) };
    progress(`footprint: ${name} ${round(bytes / 1024, 1)} KiB, cold init ${med} ms`);
  }
  return { figures, details };
}
