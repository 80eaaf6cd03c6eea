/**
 * Builds the federation core as a Lambda layer with esbuild (no Docker):
 *
 *   <outDir>/nodejs/node_modules/@apigw-federation/core/{index.js,index.js.map,package.json}
 *
 * The Lambda Node.js runtime puts `/opt/nodejs/node_modules` on `NODE_PATH`, so a function that keeps
 * `@apigw-federation/core` external resolves it from the layer. The bundle is CommonJS: `require` honours
 * `NODE_PATH`, ES module resolution does not (outside Lambda's own loader), and the functions are CommonJS too.
 * `@aws-sdk/*` stays external because the Node.js 22 runtime provides SDK v3; everything else (zod,
 * Powertools, ...) is bundled.
 *
 * `npm run build` runs this file (output in `layers/federation-core/dist`); the CDK app calls
 * `buildCoreLayer` from the layer asset's local bundling hook, so `cdk synth` builds it as well.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/** The package name functions import and keep external. */
export const CORE_PACKAGE = '@apigw-federation/core';

/** Node.js version of the Lambda runtime the layer targets. */
export const LAYER_TARGET = 'node22';

const here = dirname(fileURLToPath(import.meta.url));

/** The layer's source entry point. */
export const CORE_ENTRY = join(here, 'src', 'index.ts');

/** Default output folder of `npm run build` (the folder whose contents become the layer zip). */
export const DEFAULT_LAYER_DIR = join(here, 'dist');

export interface LayerBuildResult {
  /** Folder to zip as the layer (holds `nodejs/`). */
  readonly outDir: string;
  /** The bundled `index.js`. */
  readonly bundleFile: string;
  /** Size of `index.js` in bytes. */
  readonly bundleBytes: number;
}

/**
 * Bundles the core into `<outDir>/nodejs/node_modules/@apigw-federation/core`. Synchronous on purpose:
 * CDK's local bundling hook (`ILocalBundling.tryBundle`) is synchronous. Throws when esbuild fails.
 */
export function buildCoreLayer(outDir: string = DEFAULT_LAYER_DIR): LayerBuildResult {
  const packageDir = join(outDir, 'nodejs', 'node_modules', ...CORE_PACKAGE.split('/'));
  rmSync(join(outDir, 'nodejs'), { recursive: true, force: true });
  mkdirSync(packageDir, { recursive: true });
  const bundleFile = join(packageDir, 'index.js');
  buildSync({
    entryPoints: [CORE_ENTRY],
    outfile: bundleFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: LAYER_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    // Provided by the Lambda Node.js runtime (SDK v3); bundling it would only add weight.
    external: ['@aws-sdk/*'],
    legalComments: 'none',
    logLevel: 'warning',
    // Deterministic output: the asset hash of the layer is the hash of these bytes.
    absWorkingDir: resolve(here, '..', '..'),
  });
  writeFileSync(
    join(packageDir, 'package.json'),
    `${JSON.stringify({ name: CORE_PACKAGE, version: '0.1.0', private: true, main: 'index.js' }, null, 2)}\n`,
  );
  return { outDir, bundleFile, bundleBytes: statSync(bundleFile).size };
}

// `npm run build` / `tsx layers/federation-core/build.ts [outDir]`
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = buildCoreLayer(process.argv[2] ? resolve(process.argv[2]) : DEFAULT_LAYER_DIR);
  console.log(`layer built: ${result.bundleFile} (${(result.bundleBytes / 1024).toFixed(1)} KiB)`);
}
