/**
 * Bundles the bridge into one file for the container image: `gravitee/dist/bridge.mjs` (the bridge,
 * the relay client, `ws` and `zod`; nothing else of the repository). `npx tsx gravitee/build.ts`.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

export const BUNDLE = resolve(import.meta.dirname, 'dist/bridge.mjs');

export async function buildBridge(outfile = BUNDLE): Promise<string> {
  mkdirSync(resolve(outfile, '..'), { recursive: true });
  await build({
    entryPoints: [resolve(import.meta.dirname, 'src/entry.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    // ws's optional native speed-ups: absent in the image, ws falls back to JavaScript.
    external: ['bufferutil', 'utf-8-validate'],
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = await buildBridge();
  process.stdout.write(`${out}\n`);
}
