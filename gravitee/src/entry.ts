/** The container image's entry point (bundled to `gravitee/dist/bridge.mjs` by `gravitee/build.ts`). */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`apigw-fed gravitee: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
