/**
 * CDK app entry (`cdk.json` `app`). The only place that reads CDK context and the environment; the
 * stacks and constructs receive validated settings.
 *
 *   npx cdk synth -c configFile=federation.config.json
 *   npx cdk synth -c config='{"sources":[{"name":"main","regions":["eu-west-1"]}]}'
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { REPO_ROOT } from '../constructs/federation-function.js';
import { createFederationApp } from '../federation-app.js';
import { CONTEXT_KEYS, resolveAppSettings } from '../settings.js';

const app = new App();
let settings: ReturnType<typeof resolveAppSettings>;
try {
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
  settings = resolveAppSettings({
    context: Object.fromEntries(CONTEXT_KEYS.map((key) => [key, app.node.tryGetContext(key)])),
    version,
    account: process.env.CDK_DEFAULT_ACCOUNT,
    region: process.env.CDK_DEFAULT_REGION,
  });
} catch (error) {
  console.error(`apigw-federation: ${(error as Error).message}`);
  process.exit(1);
}
createFederationApp(app, settings);
app.synth();
