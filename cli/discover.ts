/**
 * `apigw-fed discover` / `tsx cli/discover.ts`: runs one discovery against the configured AWS (or an
 * emulator with `--endpoint`) and prints `{ "summary": ..., "catalog": [...] }` as JSON on stdout.
 *
 * Exit codes: 0 complete, 3 partial (some account-region failed: nothing of it was removed),
 * 1 failure, 2 usage error.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AwsClientFactory,
  createDiscoveryWiring,
  createLedgerTable,
  FederationError,
  loadConfig,
  toFederationError,
} from '../layers/federation-core/src/index.js';

const USAGE = `usage: apigw-fed discover [--endpoint URL] [--config FILE] [--full] [--source NAME]... [--region REGION] [--table NAME]

Runs one discovery and prints the run summary and the federated catalog as JSON.

  --endpoint URL   AWS endpoint override (an emulator); the ledger table is created if missing
  --config FILE    agent config file (JSON); default FED_CONFIG_FILE / FED_CONFIG
  --full           re-export every definition, even of unchanged deployments
  --source NAME    discover this configured source only (repeatable)
  --region REGION  region of the agent (ledger) and of the default source; default AWS_REGION
  --table NAME     ledger table; default the config's tableName
  -h, --help       this text

Exit codes: 0 complete, 3 partial, 1 failed, 2 usage error.
`;

/** Emulators accept any credentials; these are used with --endpoint when the environment has none. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface DiscoverCliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

const defaultIo: DiscoverCliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

/** Runs the command; returns the exit code. */
export async function main(argv: readonly string[], io: DiscoverCliIo = defaultIo): Promise<number> {
  let values: {
    endpoint?: string;
    config?: string;
    full?: boolean;
    source?: string[];
    region?: string;
    table?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        endpoint: { type: 'string' },
        config: { type: 'string' },
        full: { type: 'boolean' },
        source: { type: 'string', multiple: true },
        region: { type: 'string' },
        table: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }

  try {
    const env: NodeJS.ProcessEnv = { ...io.env };
    if (values.config) {
      env.FED_CONFIG_FILE = values.config;
      delete env.FED_CONFIG;
    }
    if (values.endpoint) env.AWS_ENDPOINT_URL = values.endpoint;
    if (values.region) env.AWS_REGION = values.region;
    if (values.table) env.FED_TABLE_NAME = values.table;
    env.AWS_REGION ??= env.AWS_DEFAULT_REGION ?? (values.endpoint ? 'us-east-1' : undefined);
    const config = loadConfig(env);
    const endpoint = config.runtime.endpoint;
    const credentials =
      endpoint && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE ? EMULATOR_CREDENTIALS : undefined;
    const clients = new AwsClientFactory({ region: config.runtime.region, endpoint, credentials });
    if (endpoint) {
      const dynamo = new DynamoDBClient({ region: config.runtime.region, endpoint, credentials });
      await createLedgerTable(dynamo, config.agent.tableName);
      dynamo.destroy();
    }
    const wiring = createDiscoveryWiring({ config, clients });
    const { summary } = await wiring.engine.run({ sources: values.source, full: values.full ?? false });
    const catalog = await wiring.catalog.listAll();
    io.stdout(`${JSON.stringify({ summary, catalog }, null, 2)}\n`);
    return summary.partial ? 3 : 0;
  } catch (error) {
    const typed = error instanceof FederationError ? error : toFederationError(error, 'discover');
    io.stderr(`discover failed: ${typed.code}: ${typed.message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
