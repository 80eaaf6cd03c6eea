/**
 * The deploy-time guard of the opt-in API Gateway account stack, run as Lambda would run its inline
 * code (the runtime's SDK on NODE_PATH) against the emulator's API Gateway account settings, answering a
 * CloudFormation-style response URL served here.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UpdateAccountCommand } from '@aws-sdk/client-api-gateway';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ACCOUNT_GUARD_SOURCE } from '../../infra/constructs/api-gateway-account-guard.js';
import { REPO_ROOT } from '../../infra/constructs/federation-function.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { buildTestApp } from './support.js';

const OURS = 'arn:aws:iam::123456789012:role/ApigwFederationApiGatewayAccount-LoggingRole';
const OTHER = 'arn:aws:iam::123456789012:role/someone-elses-apigateway-logs';

let emu: Emulator;
let dir: string;
let server: Server;
let responseUrl: string;
let responses: { Status: string; Reason: string }[];

beforeAll(async () => {
  emu = await startEmulator();
  dir = mkdtempSync(join(tmpdir(), 'account-guard-'));
  writeFileSync(join(dir, 'index.js'), ACCOUNT_GUARD_SOURCE);
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      responses.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  responseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response`;
});
afterAll(async () => {
  server?.close();
  await emu?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await emu.reset();
  responses = [];
});

async function setRole(arn: string): Promise<void> {
  await emu.apiGateway().send(
    new UpdateAccountCommand({
      patchOperations: [{ op: 'replace', path: '/cloudwatchRoleArn', value: arn }],
    }),
  );
}

/** Runs the inline handler once in a fresh node, as the Lambda runtime would. */
async function run(event: Record<string, unknown>): Promise<{ Status: string; Reason: string }> {
  const script = `require(${JSON.stringify(join(dir, 'index.js'))}).handler(JSON.parse(process.argv[1])).catch((e) => { console.error(e); process.exit(1); });`;
  const child = spawn(
    process.execPath,
    [
      '-e',
      script,
      JSON.stringify({
        ResponseURL: responseUrl,
        StackId: 's',
        RequestId: 'r',
        LogicalResourceId: 'l',
        ...event,
      }),
    ],
    {
      env: {
        PATH: process.env.PATH,
        // The runtime's SDK (inline code has no bundle).
        NODE_PATH: join(REPO_ROOT, 'node_modules'),
        AWS_REGION: emu.region,
        AWS_ENDPOINT_URL: emu.endpoint,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
      },
    },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, stderr).toBe(0);
  expect(responses).toHaveLength(1);
  return responses[0]!;
}

describe('API Gateway account role guard', () => {
  it('lets the stack set the role on an account that has none', async () => {
    expect(
      (await run({ RequestType: 'Create', ResourceProperties: { RoleArn: OURS, Replace: 'false' } })).Status,
    ).toBe('SUCCESS');
  });

  it('fails the deploy, naming the role and the way out, when another role is set', async () => {
    await setRole(OTHER);
    const answer = await run({
      RequestType: 'Create',
      ResourceProperties: { RoleArn: OURS, Replace: 'false' },
    });
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain(OTHER);
    expect(answer.Reason).toMatch(/relayAccessLogs=true.*replaceApiGatewayCloudWatchRole=true/);
  });

  it('replaces another role only when asked, and accepts its own role on an update', async () => {
    await setRole(OTHER);
    expect(
      (await run({ RequestType: 'Create', ResourceProperties: { RoleArn: OURS, Replace: 'true' } })).Status,
    ).toBe('SUCCESS');
    responses = [];
    await setRole(OURS);
    expect(
      (await run({ RequestType: 'Update', ResourceProperties: { RoleArn: OURS, Replace: 'false' } })).Status,
    ).toBe('SUCCESS');
  });

  it('never blocks a delete', async () => {
    await setRole(OTHER);
    expect((await run({ RequestType: 'Delete', ResourceProperties: { RoleArn: OURS } })).Status).toBe(
      'SUCCESS',
    );
  });

  it('runs before the account setting is written, with Replace only when asked', () => {
    for (const replace of [false, true]) {
      const t = buildTestApp(
        {},
        { apiGatewayCloudWatchRole: true, replaceApiGatewayCloudWatchRole: replace },
      );
      const template = Template.fromStack(t.stacks.apiGatewayAccount!);
      const [guardId, guard] = Object.entries(
        template.findResources('Custom::ApiGatewayAccountRoleGuard'),
      )[0]!;
      expect(guard.Properties.Replace).toBe(String(replace));
      const [account] = Object.values(template.findResources('AWS::ApiGateway::Account'));
      expect(account!.DependsOn).toContain(guardId);
    }
  });
});
