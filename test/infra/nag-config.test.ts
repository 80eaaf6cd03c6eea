import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/constructs/federation-function.js';
import { createFederationApp } from '../../infra/federation-app.js';
import { resolveAppSettings } from '../../infra/settings.js';
import { parseAgentConfig } from '../../layers/federation-core/src/config/load.js';
import { buildTestApp, cdkJsonContext, type TestApp } from './support.js';

let base: TestApp;
let full: TestApp;
let dir: string;

beforeAll(() => {
  base = buildTestApp();
  full = buildTestApp(
    { sources: [{ name: 'member', roleArn: 'arn:aws:iam::444455556666:role/m', regions: ['eu-west-1'] }] },
    {
      scopeApiGatewayRegions: true,
      apiGatewayCloudWatchRole: true,
      alarmTopicArn: 'arn:aws:sns:eu-west-1:111122223333:ops',
      member: { trustedRoleArns: ['arn:aws:iam::111122223333:role/agent-discovery'] },
    },
  );
  dir = mkdtempSync(join(tmpdir(), 'infra-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  const found: { path: string; id: string; reason: string }[] = [];
  const visit = (node: IConstruct) => {
    for (const entry of node.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ path: node.node.path, id: id.replace(/^annotation::/i, ''), reason });
      }
    }
    for (const child of node.node.children) visit(child);
  };
  visit(root);
  return found;
}

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged finding on the app (default and fully configured)', () => {
    for (const t of [base, full]) {
      const report = new AwsSolutionsChecks().validateScope(t.app);
      expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
        [],
      );
      expect(report.success).toBe(true);
    }
  });

  it('fails synth on an unacknowledged finding', () => {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const { federation } = createFederationApp(app, { config: parseAgentConfig({}), version: '0' });
    new iam.Policy(federation, 'Wide', {
      roles: [federation.discovery.handler.role],
      statements: [new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] })],
    });
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Resource::\*\]/);
  });

  it('gives every acknowledgment a reason and keeps IAM5 acknowledgments to one finding each', () => {
    const acks = [...acknowledgements(base.app), ...acknowledgements(full.app)];
    expect(acks.length).toBeGreaterThan(10);
    for (const ack of acks) {
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(30);
      expect(ack.id).toMatch(/^AwsSolutions-/);
      if (ack.id.startsWith('AwsSolutions-IAM5'))
        expect(ack.id).toMatch(/^AwsSolutions-IAM5\[(Resource|Action)::.+\]$/);
    }
    // No acknowledgment of a whole rule pack or a whole stack.
    for (const ack of acks) expect(ack.path.split('/').length, ack.path).toBeGreaterThan(1);
  });

  it('acknowledges nothing that is not found: every acknowledgment matches a finding of the unacknowledged app', () => {
    const acked = new Set(acknowledgements(full.app).map((a) => a.id));
    const acknowledge = Validations.prototype.acknowledge;
    let findings: string[];
    try {
      Validations.prototype.acknowledge = () => {};
      const bare = buildTestApp(
        {
          sources: [{ name: 'member', roleArn: 'arn:aws:iam::444455556666:role/m', regions: ['eu-west-1'] }],
        },
        {
          scopeApiGatewayRegions: true,
          apiGatewayCloudWatchRole: true,
          alarmTopicArn: 'arn:aws:sns:eu-west-1:111122223333:ops',
          member: { trustedRoleArns: ['arn:aws:iam::111122223333:role/agent-discovery'] },
          nag: false,
        },
      );
      findings = new AwsSolutionsChecks().validateScope(bare.app).violations.map((v) => v.ruleName);
    } finally {
      Validations.prototype.acknowledge = acknowledge;
    }
    expect(findings.length).toBeGreaterThan(0);
    for (const id of acked) expect(findings, id).toContain(id);
  });
});

describe('configuration', () => {
  const resolveWith = (context: Record<string, unknown>) => resolveAppSettings({ context, version: '1.0.0' });

  it('defaults every agent setting when no config is given (schedule every 15 minutes)', () => {
    const settings = resolveWith({});
    expect(settings.config.schedule).toBe('rate(15 minutes)');
    expect(settings.config.acceptApiWithoutUsagePlan).toBe(false);
    expect(settings.member).toBeUndefined();
  });

  it('reads inline JSON config from -c config and an object config from cdk.json', () => {
    const json = { sources: [{ name: 'a', regions: ['eu-west-1'] }], acceptApiWithoutUsagePlan: true };
    expect(resolveWith({ config: JSON.stringify(json) }).config).toMatchObject(json);
    expect(resolveWith({ config: json }).config).toMatchObject(json);
  });

  it('reads a config file', () => {
    const file = join(dir, 'ok.json');
    writeFileSync(file, JSON.stringify({ labels: { include: ['team=a'] }, schedule: 'rate(1 hour)' }));
    expect(resolveWith({ configFile: file }).config).toMatchObject({
      labels: { include: ['team=a'], exclude: [] },
      schedule: 'rate(1 hour)',
    });
  });

  it('rejects an invalid schedule naming the field and the received value', () => {
    expect(() => resolveWith({ config: '{"schedule":"every 5 minutes"}' })).toThrow(
      /config\.schedule: expected an EventBridge expression.*received "every 5 minutes"/,
    );
  });

  it('rejects an invalid source region and an unknown field, naming each', () => {
    expect(() => resolveWith({ config: { sources: [{ name: 'a', regions: ['mars-1'] }] } })).toThrow(
      /config\.sources\[0\]\.regions\[0\]/,
    );
    expect(() => resolveWith({ config: { shedule: 'rate(5 minutes)' } })).toThrow(/shedule/);
  });

  it('rejects a config file that is not JSON, naming the file', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ not json');
    expect(() => resolveWith({ configFile: file })).toThrow(/bad\.json is not valid JSON/);
  });

  it('rejects config and configFile together, and bad member or alarm settings', () => {
    expect(() => resolveWith({ config: '{}', configFile: 'x.json' })).toThrow(/either configFile or config/);
    expect(() =>
      resolveWith({ memberTrustedRoleArns: 'arn:aws:iam::111122223333:role/a,arn:aws:iam::1:role/b' }),
    ).toThrow(/memberTrustedRoleArns\[1\]/);
    expect(() => resolveWith({ memberAccount: '444455556666' })).toThrow(/need memberTrustedRoleArns/);
    expect(() => resolveWith({ alarmTopicArn: 'ops' })).toThrow(/alarmTopicArn: expected an SNS topic ARN/);
    expect(() => resolveWith({ scopeApiGatewayRegions: 'yes' })).toThrow(
      /scopeApiGatewayRegions: expected true or false/,
    );
  });

  it('fails the CDK app (bin/app.ts) with the field named when the config is invalid', () => {
    const result = spawnSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), ['infra/bin/app.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        CDK_CONTEXT_JSON: JSON.stringify({ config: '{"sources":[{"name":"x","regions":["nowhere"]}]}' }),
        CDK_OUTDIR: join(dir, 'out'),
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('config.sources[0].regions[0]');
    expect(result.stderr).toContain('"nowhere"');
  });
});

describe('app composition', () => {
  it('synthesizes the member-account stack only when trusted role ARNs are given', () => {
    expect(base.stacks.member).toBeUndefined();
    expect(full.stacks.member).toBeInstanceOf(Stack);
  });

  it('sets the API Gateway account logging role only when asked, in its own stack deployed before the relay', () => {
    expect(base.federation.findResources('AWS::ApiGateway::Account')).toEqual({});
    expect(base.stacks.apiGatewayAccount).toBeUndefined();
    const account = full.stacks.apiGatewayAccount!;
    expect(Object.keys(Template.fromStack(account).findResources('AWS::ApiGateway::Account'))).toHaveLength(
      1,
    );
    expect(full.stacks.federation.dependencies).toContain(account);
    expect(
      resolveAppSettings({ context: { apiGatewayCloudWatchRole: 'true' }, version: '1' })
        .apiGatewayCloudWatchRole,
    ).toBe(true);
  });

  it('wires alarm actions to the configured SNS topic', () => {
    const alarms = Object.values(full.federation.findResources('AWS::CloudWatch::Alarm'));
    for (const alarm of alarms)
      expect(alarm.Properties.AlarmActions).toEqual(['arn:aws:sns:eu-west-1:111122223333:ops']);
  });
});
