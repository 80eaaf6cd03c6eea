/**
 * `apigw-fed rotate-api-key-secret --secret-id NAME [--region REGION]`: rotates the API-key HMAC secret
 * with `rotateApiKeySecret` (the current version keeps a `fed-keep-<versionId>` staging label, then a
 * new value becomes current). Prints the version ids and the label count as JSON; never the value.
 *
 * Exit codes: 0 rotated, 1 failed, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { MAX_STAGING_LABELS, rotateApiKeySecret } from '../layers/federation-core/src/index.js';

const USAGE = `usage: apigw-fed rotate-api-key-secret --secret-id NAME [--region REGION] [--endpoint URL]

Rotates the API-key HMAC secret (stack output ApiKeySecretArn of the stateful stack, name
<stackPrefix>/api-key-hmac). The version that was current keeps a staging label of its own, so the
subscriptions made under it keep their keys; at most ${MAX_STAGING_LABELS - 2} versions can be kept.
`;

/** Runs the command; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let values: { 'secret-id'?: string; region?: string; endpoint?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'secret-id': { type: 'string' },
        region: { type: 'string' },
        endpoint: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values['secret-id']) {
    process.stderr.write(`--secret-id is required\n${USAGE}`);
    return 2;
  }
  const client = new SecretsManagerClient({
    region: values.region ?? process.env.AWS_REGION,
    endpoint: values.endpoint,
  });
  try {
    const result = await rotateApiKeySecret(client, values['secret-id']);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`apigw-fed rotate-api-key-secret: ${(error as Error).message}\n`);
    return 1;
  }
}
