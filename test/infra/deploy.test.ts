/**
 * What a first `cdk deploy` meets on real AWS (issue 16, "Deploy"): the templates checked against AWS's
 * own rules and limits — partitions, names, schedules, account settings, sizes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { CONFIG_FILE_PATH } from '../../infra/constructs/config-layer.js';
import {
  environmentBytes,
  FUNCTION_NAMES,
  LAMBDA_ENVIRONMENT_MAX_BYTES,
} from '../../infra/constructs/federation-function.js';
import { resolveAppSettings } from '../../infra/settings.js';
import { API_KEY_SECRET_LOGICAL_ID } from '../../infra/stacks/stateful-stack.js';
import {
  SESSION_POLICY_MAX_CHARS,
  sessionPoliciesByRole,
} from '../../layers/federation-core/src/aws/session-policy.js';
import { parseAgentConfig } from '../../layers/federation-core/src/config/load.js';
import { buildTestApp, functionOf, resourcesOf, roleOf } from './support.js';

const GOV = { account: '111122223333', region: 'us-gov-west-1' };
const GOV_MEMBER_ARN = 'arn:aws-us-gov:iam::444455556666:role/apigw-federation-member';

describe('partition', () => {
  it('builds every ARN with the partition of the deployment, never a literal arn:aws:', () => {
    const gov = buildTestApp(
      {
        sources: [
          { name: 'home', regions: ['us-gov-west-1'] },
          { name: 'member', roleArn: GOV_MEMBER_ARN, regions: ['us-gov-west-1', 'us-gov-east-1'] },
        ],
        sweepLostKeys: true,
      },
      {
        env: GOV,
        scopeApiGatewayRegions: true,
        member: { trustedRoleArns: ['arn:aws-us-gov:iam::111122223333:role/agent-discovery'], env: GOV },
      },
    );
    for (const template of [gov.federation, gov.stateful, gov.member!]) {
      const text = JSON.stringify(template.toJSON());
      expect(text.match(/.{0,80}arn:aws:.{0,40}/g) ?? []).toEqual([]);
    }
    expect(JSON.stringify(gov.federation.toJSON())).toContain(
      'arn:aws-us-gov:apigateway:us-gov-east-1::/restapis',
    );
  });
});

describe('a fresh account (no API Gateway account settings)', () => {
  it('deploys by default: no stage access logging, no account-level setting in any stack', () => {
    const t = buildTestApp();
    const [stage] = Object.values(t.federation.findResources('AWS::ApiGatewayV2::Stage'));
    expect(stage!.Properties.AccessLogSettings).toBeUndefined();
    for (const stack of t.app.node.children.filter((c): c is Stack => c instanceof Stack)) {
      expect(Template.fromStack(stack).findResources('AWS::ApiGateway::Account'), stack.stackName).toEqual(
        {},
      );
    }
    expect(t.stacks.apiGatewayAccount).toBeUndefined();
  });

  it('turns access logging on with relayAccessLogs (the account already has its role)', () => {
    const t = buildTestApp({}, { relayAccessLogs: true });
    t.federation.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
    expect(t.stacks.apiGatewayAccount).toBeUndefined();
  });

  it('puts the opt-in account role in a small stack of its own, retained, deployed before the relay', () => {
    const t = buildTestApp({}, { apiGatewayCloudWatchRole: true });
    const account = t.stacks.apiGatewayAccount!;
    expect(account.stackName).toBe('ApigwFederationApiGatewayAccount');
    const template = Template.fromStack(account);
    const resources = template.toJSON().Resources as Record<
      string,
      { Type: string; DeletionPolicy?: string }
    >;
    // The role and the setting (retained), and the deploy-time guard that checks the account first.
    expect(
      Object.values(resources)
        .map((r) => r.Type)
        .sort(),
    ).toEqual([
      'AWS::ApiGateway::Account',
      'AWS::IAM::Policy',
      'AWS::IAM::Role',
      'AWS::IAM::Role',
      'AWS::Lambda::Function',
      'AWS::Logs::LogGroup',
      'Custom::ApiGatewayAccountRoleGuard',
    ]);
    const logging = account.logging;
    const retained = [logging.account, logging.role.node.defaultChild!].map(
      (c) => account.resolve((c as unknown as { logicalId: string }).logicalId) as string,
    );
    for (const id of retained) expect(resources[id]!.DeletionPolicy, id).toBe('Retain');
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })],
      }),
    });
    expect(t.stacks.federation.dependencies).toContain(account);
    expect(t.federation.findResources('AWS::ApiGateway::Account')).toEqual({});
    t.federation.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
  });
});

describe('relay WebSocket API', () => {
  it('has a name of its own per deployment (the stack name), not the construct id', () => {
    const names = ['ApigwFederation', 'PaymentsAgent'].map((stackPrefix) => {
      const t = buildTestApp({}, { stackPrefix });
      const [api] = Object.values(t.federation.findResources('AWS::ApiGatewayV2::Api'));
      return api!.Properties.Name as string;
    });
    expect(names).toEqual(['ApigwFederation-relay', 'PaymentsAgent-relay']);
  });
});

describe('schedule', () => {
  const resolveWith = (schedule: string) =>
    resolveAppSettings({ context: { config: { schedule } }, version: '1.0.0' });

  it('synthesizes rate(1 minute), rate(5 minutes) and a six-field cron', () => {
    for (const schedule of ['rate(1 minute)', 'rate(5 minutes)', 'cron(0/15 * * * ? *)']) {
      const t = buildTestApp({ schedule });
      t.federation.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: schedule });
    }
  });

  it('fails at synth with a message on rate(1 minutes), rate(0 minutes) and a five-field cron', () => {
    expect(() => resolveWith('rate(1 minutes)')).toThrow(/config\.schedule: expected 'rate\(1 minute\)'/);
    expect(() => resolveWith('rate(0 minutes)')).toThrow(/config\.schedule: expected a rate of at least 1/);
    expect(() => resolveWith('cron(0/15 * * * *)')).toThrow(/config\.schedule: expected six fields/);
  });
});

/** IAM's limit on the inline policies of one role, together (whitespace not counted). */
const ROLE_INLINE_POLICIES_MAX_CHARS = 10_240;
const TWELVE_REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-1',
  'eu-north-1',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-northeast-1',
];
const TWENTY_SOURCES = Array.from({ length: 20 }, (_, i) => {
  const account = String(444455550000 + i);
  return {
    name: `member-${String(i).padStart(2, '0')}`,
    accountId: account,
    roleArn: `arn:aws:iam::${account}:role/apigw-federation-member`,
    regions: TWELVE_REGIONS,
  };
});

describe('sizes at 20 sources × 12 regions', () => {
  const config = { sources: TWENTY_SOURCES, sweepLostKeys: true, labels: { include: ['team=payments'] } };
  const t = buildTestApp(config, { scopeApiGatewayRegions: true });
  const variables = (name: string) =>
    (
      resourcesOf(t.federation)[functionOf(t.federation, name)]!.Properties!.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;

  it('keeps every function environment within Lambda’s 4 KB: the settings travel as a file in a layer', () => {
    const sizes: Record<string, number> = {};
    for (const name of FUNCTION_NAMES) {
      const vars = variables(name);
      sizes[name] = environmentBytes(vars);
      expect(sizes[name], name).toBeLessThanOrEqual(LAMBDA_ENVIRONMENT_MAX_BYTES);
      expect(vars.FED_CONFIG).toBeUndefined();
      expect(vars.FED_CONFIG_FILE).toBe(CONFIG_FILE_PATH);
      const layers = resourcesOf(t.federation)[functionOf(t.federation, name)]!.Properties!.Layers;
      expect(layers).toContainEqual({
        Ref: t.stacks.federation.resolve(t.stacks.federation.configLayer.layer.layerVersionArn).Ref,
      });
    }
    const file = join(t.stacks.federation.configLayer.directory, 'federation', 'config.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(parseAgentConfig(config));
    console.info(
      `environment bytes at 20×12: ${JSON.stringify(sizes)} (limit ${LAMBDA_ENVIRONMENT_MAX_BYTES})`,
    );
  });

  it('keeps each member-account session policy within STS’s 2,048 characters', () => {
    const lengths: Record<string, number> = {};
    for (const name of ['discovery', 'subscriptions']) {
      const policies = sessionPoliciesByRole(
        variables(name).FED_ASSUME_ROLE_POLICY as string,
        TWENTY_SOURCES,
      );
      expect(Object.keys(policies)).toHaveLength(20);
      lengths[name] = Math.max(...Object.values(policies).map((p) => p.length));
      expect(lengths[name], name).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
    }
    console.info(
      `session policy chars at 20×12: ${JSON.stringify(lengths)} (limit ${SESSION_POLICY_MAX_CHARS})`,
    );
  });

  it('keeps each role’s inline policies within IAM’s 10,240 characters', () => {
    const resources = resourcesOf(t.federation);
    for (const name of FUNCTION_NAMES) {
      const role = roleOf(t.federation, name);
      const docs = Object.values(resources)
        .filter((r) => r.Type === 'AWS::IAM::Policy')
        .filter((r) => ((r.Properties!.Roles ?? []) as { Ref: string }[]).some((x) => x.Ref === role))
        .map((r) => JSON.stringify(r.Properties!.PolicyDocument));
      const chars = docs.join('').replace(/\s/g, '').length;
      expect(chars, name).toBeLessThanOrEqual(ROLE_INLINE_POLICIES_MAX_CHARS);
    }
  });

  it('fails synth, naming the limit, when a source’s session policy would exceed 2,048 characters', () => {
    const letter = (n: number) => String.fromCharCode(97 + (n % 26));
    const regions = Array.from({ length: 120 }, (_, i) => `ap-southeast${letter(i)}${letter(i / 26)}-1`);
    expect(() =>
      buildTestApp({ sources: [{ name: 'wide', roleArn: TWENTY_SOURCES[0]!.roleArn, regions }] }),
    ).toThrow(/STS allows 2048/);
  });
});

describe('the API-key HMAC secret (stateful stack)', () => {
  const t = buildTestApp();

  it('lives in the stateful stack under a fixed name and a pinned logical id, retained', () => {
    expect(
      t.federation.findResources('AWS::SecretsManager::Secret', {
        Properties: { Description: Match.stringLikeRegexp('HMAC') },
      }),
    ).toEqual({});
    const secrets = t.stateful.findResources('AWS::SecretsManager::Secret');
    expect(Object.keys(secrets)).toEqual([API_KEY_SECRET_LOGICAL_ID]);
    expect(API_KEY_SECRET_LOGICAL_ID).toBe('ApiKeyHmacSecret');
    const secret = secrets[API_KEY_SECRET_LOGICAL_ID]!;
    expect(secret.DeletionPolicy).toBe('Retain');
    expect(secret.UpdateReplacePolicy).toBe('Retain');
    expect(secret.Properties.Name).toBe('ApigwFederation/api-key-hmac');
    expect(secret.Properties.SecretString).toBeUndefined();
    // Changing GenerateSecretString makes CloudFormation generate a new value: pinned too.
    expect(secret.Properties.GenerateSecretString).toEqual({
      ExcludePunctuation: true,
      IncludeSpace: false,
      PasswordLength: 64,
    });
    const other = buildTestApp({}, { stackPrefix: 'PaymentsAgent' });
    expect(
      Object.values(other.stateful.findResources('AWS::SecretsManager::Secret'))[0]!.Properties.Name,
    ).toBe('PaymentsAgent/api-key-hmac');
  });

  it('is what subscriptions reads, by its fixed name, and only subscriptions', () => {
    const vars = (
      resourcesOf(t.federation)[functionOf(t.federation, 'subscriptions')]!.Properties!.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    expect(vars.FED_API_KEY_SECRET).toBe('ApigwFederation/api-key-hmac');
    const readers = FUNCTION_NAMES.filter((name) =>
      JSON.stringify(
        Object.values(resourcesOf(t.federation)).filter(
          (r) =>
            r.Type === 'AWS::IAM::Policy' &&
            ((r.Properties!.Roles ?? []) as { Ref: string }[]).some(
              (x) => x.Ref === roleOf(t.federation, name),
            ),
        ),
      ).includes(API_KEY_SECRET_LOGICAL_ID),
    );
    expect(readers).toEqual(['subscriptions']);
    t.stateful.hasOutput('ApiKeySecretArn', { Value: { Ref: API_KEY_SECRET_LOGICAL_ID } });
  });
});

describe('member-account stack', () => {
  const t = buildTestApp(
    {},
    { member: { trustedRoleArns: ['arn:aws:iam::111122223333:role/agent-discovery'] } },
  );

  it('synthesizes bootstrapless: no bootstrap version check, no assets, deployable as a plain template or StackSet', () => {
    const template = t.member!.toJSON() as {
      Parameters?: Record<string, unknown>;
      Rules?: Record<string, unknown>;
    };
    expect(template.Parameters?.BootstrapVersion).toBeUndefined();
    expect(template.Rules?.CheckBootstrapVersion).toBeUndefined();
    const artifact = t.app.synth().getStackByName(t.stacks.member!.stackName);
    expect(artifact.assets).toEqual([]);
    expect(artifact.assumeRoleArn).toBeUndefined();
    expect(artifact.cloudFormationExecutionRoleArn).toBeUndefined();
    // No asset manifest: the template is deployed as it is, nothing is published to a bootstrap bucket.
    expect(artifact.dependencies.map((d) => d.id)).toEqual([]);
    // The agent's stacks keep the default synthesizer (they have assets).
    expect(
      (t.federation.toJSON() as { Parameters?: Record<string, unknown> }).Parameters?.BootstrapVersion,
    ).toBeDefined();
  });
});
