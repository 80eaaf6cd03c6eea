/**
 * The built artifacts, not the source: one real `cdk synth` (offline, local esbuild, Docker made
 * unusable), then
 * - cfn-lint on every synthesized template;
 * - the layer and function assets exactly as `cdk synth` packaged them under the cloud assembly, laid out
 *   the way the Lambda Node.js runtime does (function code in a task folder, the layer under
 *   `/opt`-like `nodejs/node_modules` found through `NODE_PATH`, a stand-in for the runtime's own `@aws-sdk/*` on
 *   `NODE_PATH` too, nothing else resolvable), each handler imported in a fresh Node process and invoked
 *   against the emulator, with the proxy refusing every API Gateway call the synthesized role of that
 *   function does not allow.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { APIGatewayClient, GetApiKeysCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyDocument } from '../../emulator/iam.js';
import { demoSeed, seed } from '../../emulator/seeder.js';
import { FUNCTION_NAMES, type FunctionName, REPO_ROOT } from '../../infra/constructs/federation-function.js';
import { CatalogRepository } from '../../layers/federation-core/src/ledger/catalog.js';
import { createLedgerTable, keys } from '../../layers/federation-core/src/ledger/table.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { inPartition } from './support.js';

const FUNCTION_BUNDLE_LIMIT = 100 * 1024;
const LAYER_LIMIT = 1.5 * 1024 * 1024;
const TRUSTED = 'arn:aws:iam::111122223333:role/agent-discovery';

// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation JSON, read by path
type Json = any;
type CfnResource = { Type: string; Properties: Record<string, Json>; Metadata?: Record<string, Json> };
type CfnTemplate = { Resources: Record<string, CfnResource> };

let out: string;
let work: string;
let synth: { status: number | null; stdout: string; stderr: string; ms: number };
let template: CfnTemplate;
let emu: Emulator;
let connections: { server: Server; url: string; posts: { connectionId: string; body: string }[] };
let ledgerName: string;
let relayTokenSecret: string;
let relayToken: string;
let apiKeySecret: string;

function functionResource(name: FunctionName): CfnResource {
  const found = Object.values(template.Resources).find(
    (r) =>
      r.Type === 'AWS::Lambda::Function' &&
      r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === name,
  );
  if (!found) throw new Error(`function ${name} not in the synthesized template`);
  return found;
}

function assetDir(resource: CfnResource): string {
  const path = resource.Metadata?.['aws:asset:path'] as string | undefined;
  if (!path) throw new Error('resource has no aws:asset:path metadata');
  return join(out, path);
}

/** The role's API Gateway statements, as the proxy's policy for the function's access key. */
function apiGatewayPolicyOf(name: FunctionName): PolicyDocument {
  const roleId = functionResource(name).Properties.Role['Fn::GetAtt'][0] as string;
  const statements = Object.values(template.Resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: { Ref: string }) => x.Ref === roleId),
    )
    .flatMap(
      (r) =>
        r.Properties.PolicyDocument.Statement as {
          Effect: 'Allow';
          Action: string | string[];
          Resource: unknown;
        }[],
    )
    .filter((s) => [s.Action].flat().some((a) => a.startsWith('apigateway:')))
    // An environment-agnostic synth: ARNs carry `AWS::Partition`, resolved here as on AWS.
    .map((s) => ({ ...s, Resource: inPartition(s.Resource) }));
  return { Version: '2012-10-17', Statement: statements as PolicyDocument['Statement'] };
}

const accessKeyOf = (name: FunctionName) =>
  `AKIA${name
    .replace(/[^a-z]/g, '')
    .toUpperCase()
    .slice(0, 12)
    .padEnd(12, 'X')}TEST`;

/** Lays out a function like Lambda: /var/task, /opt (the layers), a runtime SDK that must not load; under a temp root. */
const layouts = new Map<FunctionName, { taskRoot: string; nodePath: string; opt: string }>();
function layout(name: FunctionName): { taskRoot: string; nodePath: string; opt: string } {
  const cached = layouts.get(name);
  if (cached) return cached;
  const root = join(work, name);
  const taskRoot = join(root, 'var', 'task');
  const opt = join(root, 'opt');
  const runtimeModules = join(root, 'var', 'runtime', 'node_modules');
  cpSync(assetDir(functionResource(name)), taskRoot, { recursive: true });
  // Every layer of the function, extracted into one /opt as Lambda does (the core, the settings).
  for (const ref of functionResource(name).Properties.Layers as { Ref: string }[]) {
    cpSync(assetDir(template.Resources[ref.Ref]!), opt, { recursive: true });
  }
  // The Node.js 22 runtime provides an SDK v3 of its own version under /var/runtime/node_modules. The
  // layer bundles the clients the tests ran with, so the runtime's must never load: here every
  // @aws-sdk package resolves, and throws when required.
  for (const pkg of readdirSync(join(REPO_ROOT, 'node_modules', '@aws-sdk'))) {
    const dir = join(runtimeModules, '@aws-sdk', pkg);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@aws-sdk/${pkg}`, main: 'index.js' }));
    writeFileSync(join(dir, 'index.js'), `throw new Error('the runtime SDK was loaded: @aws-sdk/${pkg}');\n`);
  }
  const nodePath = [
    join(opt, 'nodejs', 'node22', 'node_modules'),
    join(opt, 'nodejs', 'node_modules'),
    runtimeModules,
    join(root, 'var', 'runtime'),
    taskRoot,
  ].join(':');
  layouts.set(name, { taskRoot, nodePath, opt });
  return { taskRoot, nodePath, opt };
}

const BOOTSTRAP = `
const path = require('node:path');
const [taskRoot, handlerSpec, eventJson] = process.argv.slice(2);
const dot = handlerSpec.lastIndexOf('.');
const started = process.hrtime.bigint();
let mod;
try {
  mod = require(path.join(taskRoot, handlerSpec.slice(0, dot)));
} catch (error) {
  process.stdout.write('\\n@@RESULT@@' + JSON.stringify({ phase: 'init', error: { name: error.name, message: error.message, code: error.code } }));
  process.exit(0);
}
const initMs = Number(process.hrtime.bigint() - started) / 1e6;
if (process.env.LOAD_ONLY === '1') {
  process.stdout.write('\\n@@RESULT@@' + JSON.stringify({ phase: 'loaded', initMs, result: typeof mod[handlerSpec.slice(dot + 1)] }));
  process.exit(0);
}
const context = {
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  invokedFunctionArn: 'arn:aws:lambda:' + process.env.AWS_REGION + ':123456789012:function:' + process.env.AWS_LAMBDA_FUNCTION_NAME,
  awsRequestId: require('node:crypto').randomUUID(),
  memoryLimitInMB: '256',
  getRemainingTimeInMillis: () => 30000,
  callbackWaitsForEmptyEventLoop: true,
};
Promise.resolve()
  .then(() => mod[handlerSpec.slice(dot + 1)](JSON.parse(eventJson), context))
  .then(
    (result) => { process.stdout.write('\\n@@RESULT@@' + JSON.stringify({ phase: 'invoke', initMs, result: result === undefined ? null : result })); process.exit(0); },
    (error) => { process.stdout.write('\\n@@RESULT@@' + JSON.stringify({ phase: 'invoke', initMs, error: { name: error.name, message: error.message } })); process.exit(0); },
  );
`;

interface Invocation {
  phase: 'init' | 'loaded' | 'invoke';
  initMs?: number;
  result?: Json;
  error?: { name: string; message: string; code?: string };
  stderr: string;
}

/** Imports the packaged handler in a fresh Node process laid out like Lambda and invokes it once. */
async function invoke(
  name: FunctionName,
  event: unknown,
  options: { loadOnly?: boolean } = {},
): Promise<Invocation> {
  const { taskRoot, nodePath, opt } = layout(name);
  const fn = functionResource(name);
  const variables: Record<string, string> = {};
  for (const [key, value] of Object.entries(fn.Properties.Environment.Variables as Record<string, unknown>)) {
    if (typeof value === 'string') variables[key] = value;
  }
  const bootstrap = join(work, 'bootstrap.cjs');
  if (!existsSync(bootstrap)) writeFileSync(bootstrap, BOOTSTRAP);
  // Asynchronous: the emulator's proxy runs in this process and must keep answering.
  const child = spawn(process.execPath, [bootstrap, taskRoot, fn.Properties.Handler, JSON.stringify(event)], {
    cwd: taskRoot,
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...variables,
      // The tokens of the template, resolved to the emulator's resources.
      FED_TABLE_NAME: ledgerName,
      FED_RELAY_TOKEN_SECRET: relayTokenSecret,
      FED_API_KEY_SECRET: apiKeySecret,
      FED_CONNECTIONS_URL: connections.url,
      // The settings file of the config layer, under this layout's /opt.
      FED_CONFIG_FILE: join(opt, relative('/opt', variables.FED_CONFIG_FILE ?? '/opt/missing')),
      FED_DISCOVERY_FUNCTION: 'discovery-fn',
      FED_SUBSCRIPTIONS_FUNCTION: 'subscriptions-fn',
      NODE_PATH: nodePath,
      LAMBDA_TASK_ROOT: taskRoot,
      AWS_LAMBDA_FUNCTION_NAME: `${name}-fn`,
      AWS_REGION: emu.region,
      AWS_DEFAULT_REGION: emu.region,
      AWS_ENDPOINT_URL: emu.endpoint,
      AWS_ACCESS_KEY_ID: accessKeyOf(name),
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_MAX_ATTEMPTS: '2',
      LOAD_ONLY: options.loadOnly ? '1' : '0',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, sig) => resolve([code, sig])),
  );
  const result = { stdout, stderr, status, signal };
  const marker = result.stdout.lastIndexOf('@@RESULT@@');
  if (marker < 0) {
    throw new Error(
      `${name}: no result (status ${result.status}, signal ${result.signal})\n${result.stderr}`,
    );
  }
  return {
    ...(JSON.parse(result.stdout.slice(marker + '@@RESULT@@'.length)) as Invocation),
    stderr: result.stderr,
  };
}

function startConnectionsServer(): Promise<typeof connections> {
  const posts: { connectionId: string; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const match = /\/@connections\/([^/?]+)/.exec(req.url ?? '');
      if (req.method === 'POST' && match) {
        posts.push({
          connectionId: decodeURIComponent(match[1]!),
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(200).end();
      } else {
        res.writeHead(req.method === 'DELETE' ? 204 : 410, { 'content-type': 'application/json' }).end('{}');
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/live`, posts });
    }),
  );
}

beforeAll(async () => {
  for (const dir of ['/node_modules', join(tmpdir(), 'node_modules')]) {
    if (existsSync(dir))
      throw new Error(
        `${dir} exists: it would let the laid-out functions resolve modules Lambda would not have`,
      );
  }
  out = mkdtempSync(join(tmpdir(), 'cdk-out-'));
  work = mkdtempSync(join(tmpdir(), 'lambda-layout-'));
  const started = performance.now();
  const cdk = spawnSync(
    join(REPO_ROOT, 'node_modules', '.bin', 'cdk'),
    [
      'synth',
      '--quiet',
      '--output',
      out,
      '--context',
      `memberTrustedRoleArns=${TRUSTED}`,
      '--context',
      'apiGatewayCloudWatchRole=true',
    ],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 240_000,
      // No Docker: any attempt to bundle in a container fails the synth.
      env: { ...process.env, CDK_DOCKER: '/bin/false', CDK_DISABLE_CLI_TELEMETRY: 'true' },
    },
  );
  synth = {
    status: cdk.status,
    stdout: cdk.stdout,
    stderr: cdk.stderr,
    ms: Math.round(performance.now() - started),
  };
  if (synth.status === 0) {
    template = JSON.parse(readFileSync(join(out, 'ApigwFederation.template.json'), 'utf8')) as CfnTemplate;
  }
  emu = await startEmulator();
  connections = await startConnectionsServer();
}, 300_000);

afterAll(async () => {
  await emu?.stop();
  connections?.server.close();
  for (const dir of [out, work]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cdk synth (real, offline, local esbuild)', () => {
  it('succeeds without Docker and with no unacknowledged cdk-nag finding', () => {
    expect(synth.status, synth.stderr).toBe(0);
    expect(synth.stderr).not.toMatch(/AwsSolutions-/);
    for (const stack of [
      'ApigwFederationStateful',
      'ApigwFederation',
      'ApigwFederationMember',
      'ApigwFederationApiGatewayAccount',
    ]) {
      expect(existsSync(join(out, `${stack}.template.json`)), stack).toBe(true);
    }
    console.info(`cdk synth: ${synth.ms} ms`);
  });

  it('produces templates that cfn-lint finds clean', () => {
    const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (version.error || version.status !== 0) {
      throw new Error(
        'cfn-lint is not on PATH: install it (pip install cfn-lint) — the synthesized templates must be linted',
      );
    }
    const templates = [
      'ApigwFederationStateful',
      'ApigwFederation',
      'ApigwFederationMember',
      'ApigwFederationApiGatewayAccount',
    ].map((s) => join(out, `${s}.template.json`));
    // W3005 (DependsOn already implied by GetAtt) is how CDK wires every function to its role's
    // default policy; it is redundant, not wrong.
    const lint = spawnSync('cfn-lint', ['--ignore-checks', 'W3005', '--', ...templates], {
      encoding: 'utf8',
    });
    expect(`${lint.stdout}${lint.stderr}`).toBe('');
    expect(lint.status).toBe(0);
  });

  it('packages the core layer as nodejs/node_modules/@apigw-federation/core (CommonJS, SDK clients bundled, under 1.5 MB)', () => {
    const layer = Object.values(template.Resources).find(
      (r) =>
        r.Type === 'AWS::Lambda::LayerVersion' &&
        existsSync(join(assetDir(r), 'nodejs', 'node_modules', '@apigw-federation', 'core')),
    )!;
    const pkgDir = join(assetDir(layer), 'nodejs', 'node_modules', '@apigw-federation', 'core');
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({ name: '@apigw-federation/core', main: 'index.js' });
    expect(pkg.type).toBeUndefined();
    const size = statSync(join(pkgDir, 'index.js')).size;
    expect(size).toBeLessThan(LAYER_LIMIT);
    const source = readFileSync(join(pkgDir, 'index.js'), 'utf8');
    expect(source).not.toMatch(/^\s*(import|export)\s/m);
    // zod ships once, as a package of its own next to the core.
    expect(source).toContain('require("zod")');
    // The AWS SDK clients are bundled: what the tests ran is what runs, never the runtime's SDK.
    // (Only the optional CRT signer, which the SDK tries to load for SigV4a, which no client here uses.)
    expect(new Set(source.match(/require\("@aws-sdk\/[^"]+"\)/g) ?? [])).toEqual(
      new Set(['require("@aws-sdk/signature-v4-crt")']),
    );
    expect(source).toContain('aws-sdk-js');
    expect(source).toContain('GetRestApis');
    const zod = JSON.parse(
      readFileSync(join(assetDir(layer), 'nodejs', 'node_modules', 'zod', 'package.json'), 'utf8'),
    );
    expect(zod).toMatchObject({ name: 'zod', main: 'index.js' });
    const zodSize = statSync(join(assetDir(layer), 'nodejs', 'node_modules', 'zod', 'index.js')).size;
    expect(size + zodSize).toBeLessThan(LAYER_LIMIT);
    console.info(`core layer: core ${(size / 1024).toFixed(1)} KiB + zod ${(zodSize / 1024).toFixed(1)} KiB`);
  });

  it('bundles each function small, as CommonJS, with the core (and the SDK it bundles) left to the layer', () => {
    const sizes: Record<string, string> = {};
    for (const name of FUNCTION_NAMES) {
      const dir = assetDir(functionResource(name));
      const size = statSync(join(dir, 'index.js')).size;
      sizes[name] = `${(size / 1024).toFixed(1)} KiB`;
      expect(size, name).toBeLessThan(FUNCTION_BUNDLE_LIMIT);
      const map = JSON.parse(readFileSync(join(dir, 'index.js.map'), 'utf8')) as { sources: string[] };
      const leaked = map.sources.filter(
        (s) =>
          s.includes('layers/federation-core/src') ||
          s.includes('node_modules/@aws-sdk/') ||
          s.includes('node_modules/zod/'),
      );
      expect(leaked, name).toEqual([]);
      expect(readFileSync(join(dir, 'index.js'), 'utf8')).toContain('@apigw-federation/core');
    }
    console.info(`function bundles: ${JSON.stringify(sizes)}`);
  });
});

describe('packaged handlers, laid out like Lambda, against the emulator', () => {
  beforeAll(async () => {
    ledgerName = `ledger-${randomUUID().slice(0, 8)}`;
    await createLedgerTable(emu.dynamoDb(), ledgerName);
    const secrets = new SecretsManagerClient(emu.clientConfig({ via: 'moto' }));
    relayToken = randomBytes(24).toString('hex');
    relayTokenSecret = (
      await secrets.send(
        new CreateSecretCommand({ Name: `relay-token-${ledgerName}`, SecretString: relayToken }),
      )
    ).ARN!;
    apiKeySecret = (
      await secrets.send(
        new CreateSecretCommand({
          Name: `api-key-${ledgerName}`,
          SecretString: randomBytes(32).toString('hex'),
        }),
      )
    ).ARN!;
    // Every function runs under its synthesized role's API Gateway policy (none at all for the relay).
    for (const name of FUNCTION_NAMES)
      emu.proxy.setPolicy(apiGatewayPolicyOf(name), { accessKeyId: accessKeyOf(name) });
    await seed(emu.apiGateway(), demoSeed());
  }, 120_000);

  it('loads every handler from its bundle with the core and zod resolved from the layer through NODE_PATH', async () => {
    const initMs: Record<string, number> = {};
    for (const name of FUNCTION_NAMES) {
      const run = await invoke(name, {}, { loadOnly: true });
      expect(run.phase, `${name}: ${run.error?.message}\n${run.stderr}`).toBe('loaded');
      expect(run.result, name).toBe('function');
      initMs[name] = Math.round(run.initMs ?? 0);
    }
    console.info(`handler module init (ms): ${JSON.stringify(initMs)}`);
  });

  it('fails to load a handler when the layer is missing from NODE_PATH (the check can fail)', async () => {
    const { taskRoot } = layout('relay-command');
    const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(join(taskRoot, 'index.js'))})`], {
      cwd: taskRoot,
      env: { PATH: process.env.PATH, NODE_PATH: '', AWS_REGION: emu.region },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).not.toBe(0);
    expect(stderr).toContain("Cannot find module '@apigw-federation/core'");
  });

  it('relay-authorizer allows the token held in Secrets Manager and denies another one', async () => {
    const event = (token: string) => ({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:us-east-1:123456789012:abc123/live/$connect',
      headers: { Authorization: `Bearer ${token}` },
      requestContext: { connectionId: 'c-auth', routeKey: '$connect', eventType: 'CONNECT' },
    });
    const allowed = await invoke('relay-authorizer', event(relayToken));
    expect(allowed.phase, allowed.stderr).toBe('invoke');
    expect(allowed.error, allowed.stderr).toBeUndefined();
    expect(JSON.stringify(allowed.result.policyDocument)).toContain('"Allow"');
    const denied = await invoke('relay-authorizer', event(randomBytes(24).toString('hex')));
    expect(JSON.stringify(denied.result?.policyDocument)).toContain('"Deny"');
  });

  it('relay-connection records a connection on $connect in the ledger', async () => {
    const connectionId = `conn-${randomUUID().slice(0, 8)}`;
    const run = await invoke('relay-connection', {
      requestContext: {
        connectionId,
        eventType: 'CONNECT',
        routeKey: '$connect',
        domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
        stage: 'live',
        identity: { sourceIp: '203.0.113.9' },
      },
      isBase64Encoded: false,
    });
    expect(run.error, run.stderr).toBeUndefined();
    expect(run.result).toEqual({ statusCode: 200 });
    const doc = DynamoDBDocumentClient.from(emu.dynamoDb());
    const item = await doc.send(
      new GetCommand({ TableName: ledgerName, Key: keys.connection(connectionId) }),
    );
    expect(item.Item).toBeDefined();
  });

  it('relay-command answers ping through @connections', async () => {
    const connectionId = `conn-${randomUUID().slice(0, 8)}`;
    const before = connections.posts.length;
    const run = await invoke('relay-command', {
      requestContext: {
        connectionId,
        eventType: 'MESSAGE',
        routeKey: 'ping',
        domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
        stage: 'live',
      },
      body: JSON.stringify({ action: 'ping', id: 'cmd-1' }),
      isBase64Encoded: false,
    });
    expect(run.error, run.stderr).toBeUndefined();
    expect(run.result).toEqual({ statusCode: 200 });
    const replies = connections.posts.slice(before).filter((p) => p.connectionId === connectionId);
    expect(replies.length, run.stderr).toBeGreaterThan(0);
    expect(JSON.parse(replies.at(-1)!.body)).toMatchObject({
      type: 'reply',
      commandId: 'cmd-1',
      status: 'SUCCEEDED',
    });
  });

  it('discovery reads API Gateway within the GET statement only and writes the catalog', async () => {
    emu.proxy.resetCalls();
    const run = await invoke('discovery', {});
    expect(run.error, run.stderr).toBeUndefined();
    expect(emu.proxy.calls.count({ service: 'apigateway', outcome: 'refused' })).toBe(0);
    expect(emu.proxy.calls.countOf('GetRestApis')).toBeGreaterThan(0);
    const catalog = await new CatalogRepository({
      client: DynamoDBDocumentClient.from(emu.dynamoDb()),
      tableName: ledgerName,
    }).listByAccountRegion(emu.accountId, emu.region);
    expect(catalog.length).toBeGreaterThan(0);
  });

  it('subscriptions creates and revokes a key within the POST/DELETE statements only', async () => {
    const catalog = await new CatalogRepository({
      client: DynamoDBDocumentClient.from(emu.dynamoDb()),
      tableName: ledgerName,
    }).listByAccountRegion(emu.accountId, emu.region);
    const api = catalog.find((a) => a.plans.length > 0)!;
    expect(api).toBeDefined();
    const plan = api.plans[0]!;
    emu.proxy.resetCalls();
    const subscribed = await invoke('subscriptions', {
      action: 'subscribe',
      subscriptionId: `sub-${randomUUID().slice(0, 8)}`,
      apiId: api.id,
      planId: plan.id,
      application: { id: 'app-1', name: 'Artifact test' },
    });
    expect(subscribed.error, subscribed.stderr).toBeUndefined();
    expect(subscribed.result).toMatchObject({ status: 'ACTIVE' });
    const keysOnPlan = await emu
      .apiGateway()
      .send(new GetUsagePlanKeysCommand({ usagePlanId: subscribed.result.usagePlanId }));
    expect(keysOnPlan.items?.map((k) => k.id)).toContain(subscribed.result.apiKeyId);
    const revoked = await invoke('subscriptions', {
      action: 'unsubscribe',
      subscriptionId: subscribed.result.subscriptionId,
    });
    expect(revoked.result).toMatchObject({ status: 'REVOKED' });
    expect(emu.proxy.calls.count({ service: 'apigateway', outcome: 'refused' })).toBe(0);
  });

  it('refuses a call outside the synthesized policy (GET /apikeys under the subscriptions policy)', async () => {
    const client = new APIGatewayClient(
      emu.clientConfig({
        credentials: { accessKeyId: accessKeyOf('subscriptions'), secretAccessKey: 'testing' },
      }),
    );
    await expect(client.send(new GetApiKeysCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    const discoveryClient = new APIGatewayClient(
      emu.clientConfig({
        credentials: { accessKeyId: accessKeyOf('discovery'), secretAccessKey: 'testing' },
      }),
    );
    await expect(discoveryClient.send(new GetApiKeysCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
  });
});
