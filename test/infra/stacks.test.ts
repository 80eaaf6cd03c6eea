import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, REPO_ROOT } from '../../infra/constructs/federation-function.js';
import { RELAY_COMMAND_ROUTES } from '../../infra/constructs/relay.js';
import {
  apiGatewayPolicyJson,
  DOCUMENTED_POLICY,
  documentedStatementsJson,
  OPT_IN_STATEMENTS,
} from '../../infra/iam/documented-policy.js';
import { API_KEY_SECRET_LOGICAL_ID, LEDGER_TABLE_LOGICAL_ID } from '../../infra/stacks/stateful-stack.js';
import { parseAgentConfig } from '../../layers/federation-core/src/config/load.js';
import { createLedgerTable } from '../../layers/federation-core/src/ledger/table.js';
import {
  apiGatewayStatements,
  asArray,
  buildTestApp,
  functionOf,
  inPartition,
  resourcesOf,
  roleOf,
  statementsOfRole,
  type TestApp,
} from './support.js';

const fixture = JSON.parse(
  readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'documented-policy.json'), 'utf8'),
) as {
  PolicyDocument: { Version: string; Statement: { Effect: string; Action: string[]; Resource: string[] }[] };
};
const documented = fixture.PolicyDocument;

const MEMBER_ARN = 'arn:aws:iam::444455556666:role/apigw-federation-member';
const sourcesConfig = {
  agentId: 'agent-1',
  schedule: 'cron(0/5 * * * ? *)',
  acceptApiWithoutUsagePlan: true,
  labels: { include: ['team=payments'], exclude: ['internal'] },
  sources: [
    { name: 'home', regions: ['eu-west-1', 'us-east-1'] },
    { name: 'member', accountId: '444455556666', roleArn: MEMBER_ARN, regions: ['eu-central-1'] },
  ],
};

let base: TestApp;
let withSources: TestApp;

beforeAll(() => {
  base = buildTestApp();
  withSources = buildTestApp(sourcesConfig, {
    member: {
      trustedRoleArns: [
        'arn:aws:iam::111122223333:role/agent-discovery',
        'arn:aws:iam::111122223333:role/agent-subscriptions',
      ],
    },
  });
});

describe('StatefulStack (ledger table)', () => {
  it('pins the logical id of the ledger table', () => {
    const tables = base.stateful.findResources('AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toEqual([LEDGER_TABLE_LOGICAL_ID]);
    expect(LEDGER_TABLE_LOGICAL_ID).toBe('LedgerTable');
  });

  it('is on-demand, point-in-time recoverable, encrypted with the AWS managed key, with TTL on expiresAt, retained', () => {
    const table = resourcesOf(base.stateful)[LEDGER_TABLE_LOGICAL_ID] as Record<string, unknown> & {
      Properties: Record<string, unknown>;
    };
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
    expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table.Properties.DeletionProtectionEnabled).toBe(true);
    expect(table.Properties.TableName).toBeUndefined();
  });

  it('has the same key layout as createLedgerTable in the core', async () => {
    const sent: unknown[] = [];
    const recorder = {
      send: async (command: { input: unknown; constructor: { name: string } }) => {
        sent.push(command.input);
        return command.constructor.name === 'DescribeTableCommand'
          ? { Table: { TableStatus: 'ACTIVE' } }
          : {};
      },
    };
    await createLedgerTable(recorder as never, 'ledger');
    const create = sent[0] as CreateTableCommandInput;
    const table = resourcesOf(base.stateful)[LEDGER_TABLE_LOGICAL_ID]!.Properties!;
    const sortBy = <T extends { AttributeName?: string }>(list: T[]) =>
      [...list].sort((a, b) => String(a.AttributeName).localeCompare(String(b.AttributeName)));
    expect(sortBy(table.AttributeDefinitions as { AttributeName: string }[])).toEqual(
      sortBy(create.AttributeDefinitions!),
    );
    expect(table.KeySchema).toEqual(create.KeySchema);
    expect(table.GlobalSecondaryIndexes).toEqual(create.GlobalSecondaryIndexes);
    expect(sent).toContainEqual(
      expect.objectContaining({ TimeToLiveSpecification: (table.TimeToLiveSpecification as object) ?? {} }),
    );
  });

  it('outputs the table name', () => {
    base.stateful.hasOutput('TableName', { Value: { Ref: LEDGER_TABLE_LOGICAL_ID } });
  });
});

describe('IAM: the documented policy, split', () => {
  it('holds the statements of the documented policy verbatim in one module', () => {
    expect(JSON.parse(JSON.stringify(DOCUMENTED_POLICY))).toEqual(documented);
  });

  it('gives discovery exactly the apigateway:GET statement with its four resources', () => {
    const statements = apiGatewayStatements(
      statementsOfRole(base.federation, roleOf(base.federation, 'discovery')),
    );
    expect(statements).toEqual([documented.Statement[0]]);
    expect(statements[0]!.Resource).toHaveLength(4);
  });

  it('gives subscriptions exactly the POST and DELETE statements', () => {
    const statements = apiGatewayStatements(
      statementsOfRole(base.federation, roleOf(base.federation, 'subscriptions')),
    );
    expect(statements).toEqual([documented.Statement[1], documented.Statement[2]]);
  });

  it('exports per capability the policy document the emulator proxy enforces, equal to the role grants', () => {
    for (const name of ['discovery', 'subscriptions'] as const) {
      const synthesized = apiGatewayStatements(
        statementsOfRole(base.federation, roleOf(base.federation, name)),
      );
      expect(apiGatewayPolicyJson(name).Statement).toEqual(synthesized);
    }
  });

  it('gives the relay functions no apigateway permission', () => {
    for (const name of ['relay-authorizer', 'relay-connection', 'relay-command']) {
      expect(apiGatewayStatements(statementsOfRole(base.federation, roleOf(base.federation, name)))).toEqual(
        [],
      );
    }
  });

  it('grants, over all roles, exactly the documented policy (union equals the fixture)', () => {
    const union = FUNCTION_NAMES.flatMap((name) =>
      apiGatewayStatements(statementsOfRole(base.federation, roleOf(base.federation, name))),
    );
    const key = (s: { Action: string[] }) => s.Action.join(',');
    expect([...union].sort((a, b) => key(a).localeCompare(key(b)))).toEqual(
      [...documented.Statement].sort((a, b) => key(a).localeCompare(key(b))),
    );
  });

  it('grants no apigateway:* action and no API Gateway permission on Resource "*" anywhere', () => {
    for (const template of [base.federation, withSources.federation]) {
      for (const resource of Object.values(resourcesOf(template))) {
        if (resource.Type !== 'AWS::IAM::Policy') continue;
        for (const s of (
          resource.Properties!.PolicyDocument as {
            Statement: { Action: string | string[]; Resource: unknown }[];
          }
        ).Statement) {
          const actions = asArray(s.Action);
          expect(actions.filter((a) => /^apigateway:(\*|.*\*)/i.test(a) || a === '*')).toEqual([]);
          if (asArray(s.Resource).includes('*')) {
            // The only "*" resource: X-Ray, which has no resource-level permissions.
            expect(actions.sort()).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
          }
        }
      }
    }
  });

  it('grants sts:AssumeRole only on the configured role ARNs, only to discovery and subscriptions', () => {
    const assume = (t: TestApp, name: string) =>
      statementsOfRole(t.federation, roleOf(t.federation, name)).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('sts:')),
      );
    for (const name of ['discovery', 'subscriptions']) {
      expect(assume(withSources, name)).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Resource: MEMBER_ARN },
      ]);
      expect(assume(base, name)).toEqual([]);
    }
    for (const name of ['relay-authorizer', 'relay-connection', 'relay-command']) {
      expect(assume(withSources, name)).toEqual([]);
    }
  });

  it('narrows assumed-role sessions to each function’s part of the documented policy', () => {
    const sessionPolicy = (t: TestApp, name: string) => {
      const fn = resourcesOf(t.federation)[functionOf(t.federation, name)]!;
      const env = (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      return env.FED_ASSUME_ROLE_POLICY;
    };
    expect(JSON.parse(sessionPolicy(withSources, 'discovery') as string)).toEqual(
      apiGatewayPolicyJson('discovery'),
    );
    expect(JSON.parse(sessionPolicy(withSources, 'subscriptions') as string)).toEqual(
      apiGatewayPolicyJson('subscriptions'),
    );
    expect(sessionPolicy(base, 'discovery')).toBeUndefined();
  });

  it('narrows the documented resources to the discovered regions when scopeApiGatewayRegions is set', () => {
    const scoped = buildTestApp(sourcesConfig, { scopeApiGatewayRegions: true });
    const [get] = apiGatewayStatements(
      statementsOfRole(scoped.federation, roleOf(scoped.federation, 'discovery')),
    );
    expect(get!.Resource).toHaveLength(3 * 4);
    expect(get!.Resource).toContain('arn:aws:apigateway:eu-central-1::/restapis/*/stages/*');
    expect(get!.Resource).not.toContain('arn:aws:apigateway:*::/restapis');
    const expected = documentedStatementsJson('discovery', {
      regions: ['eu-west-1', 'us-east-1', 'eu-central-1'],
    })[0]!;
    expect([...(get!.Resource as string[])].sort()).toEqual([...expected.Resource].sort());
  });

  it('scopes execute-api:ManageConnections to this API stage @connections/* for the functions that post', () => {
    const apiId = Object.keys(base.federation.findResources('AWS::ApiGatewayV2::Api'))[0]!;
    const expected = {
      Action: 'execute-api:ManageConnections',
      Effect: 'Allow',
      Resource: {
        'Fn::Join': [
          '',
          ['arn:aws:execute-api:eu-west-1:111122223333:', { Ref: apiId }, '/live/*/@connections/*'],
        ],
      },
    };
    for (const name of ['discovery', 'subscriptions', 'relay-connection', 'relay-command']) {
      const manage = statementsOfRole(base.federation, roleOf(base.federation, name)).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('execute-api:')),
      );
      expect(manage, name).toEqual([expected]);
    }
    const authorizer = statementsOfRole(base.federation, roleOf(base.federation, 'relay-authorizer'));
    expect(authorizer.filter((s) => asArray(s.Action).some((a) => a.startsWith('execute-api:')))).toEqual([]);
  });

  it('lets only the authorizer read the relay token and only subscriptions read the API-key secret', () => {
    const readers = (secretPrefix: string) =>
      FUNCTION_NAMES.filter((name) =>
        statementsOfRole(base.federation, roleOf(base.federation, name)).some(
          (s) =>
            asArray(s.Action).includes('secretsmanager:GetSecretValue') &&
            JSON.stringify(s.Resource).includes(secretPrefix),
        ),
      );
    expect(readers('SecretsRelayToken')).toEqual(['relay-authorizer']);
    // The API-key secret is the stateful stack's (imported by its pinned logical id).
    expect(readers(API_KEY_SECRET_LOGICAL_ID)).toEqual(['subscriptions']);
  });

  it('lets relay-command invoke discovery, subscriptions and itself (sync), relay-connection only itself, discovery only subscriptions (revoke-keys)', () => {
    const invoked = (name: string) =>
      statementsOfRole(base.federation, roleOf(base.federation, name))
        .filter((s) => asArray(s.Action).includes('lambda:InvokeFunction'))
        .flatMap((s) => asArray(s.Resource));
    const arn = (fn: string) => ({ 'Fn::GetAtt': [functionOf(base.federation, fn), 'Arn'] });
    expect(invoked('relay-command')).toEqual([arn('discovery'), arn('subscriptions'), arn('relay-command')]);
    expect(invoked('relay-connection')).toEqual([arn('relay-connection')]);
    expect(invoked('discovery')).toEqual([arn('subscriptions')]);
    for (const name of ['subscriptions', 'relay-authorizer']) expect(invoked(name)).toEqual([]);
  });

  it('retries asynchronous subscriptions invocations (revoke-keys) twice, then into a dead-letter queue; discovery knows the function', () => {
    const subscriptions = functionOf(base.federation, 'subscriptions');
    const config = Object.values(base.federation.findResources('AWS::Lambda::EventInvokeConfig')).find(
      (r) => JSON.stringify(r.Properties.FunctionName) === JSON.stringify({ Ref: subscriptions }),
    );
    expect(config, 'an EventInvokeConfig of the subscriptions function').toBeDefined();
    expect(config!.Properties.MaximumRetryAttempts).toBe(2);
    expect(config!.Properties.MaximumEventAgeInSeconds).toBe(6 * 3600);
    const destination = config!.Properties.DestinationConfig.OnFailure.Destination as {
      'Fn::GetAtt': [string, string];
    };
    const queueId = destination['Fn::GetAtt'][0];
    expect(resourcesOf(base.federation)[queueId]!.Type).toBe('AWS::SQS::Queue');
    expect(queueId).toMatch(/^Subscriptions/);
    // The queue is alarmed like the other dead-letter queues.
    const alarmed = Object.values(base.federation.findResources('AWS::CloudWatch::Alarm')).some((a) =>
      JSON.stringify(a.Properties.Dimensions ?? []).includes(queueId),
    );
    expect(alarmed, 'an alarm on the subscriptions dead-letter queue').toBe(true);
    const discovery = resourcesOf(base.federation)[functionOf(base.federation, 'discovery')]!.Properties! as {
      Environment: { Variables: Record<string, unknown> };
    };
    expect(discovery.Environment.Variables.FED_SUBSCRIPTIONS_FUNCTION).toEqual({ Ref: subscriptions });
  });
});

describe('FederationStack: functions', () => {
  it('attaches the core layer to every function, on ARM64 Node.js 22 with tracing and its own log group', () => {
    const layers = Object.keys(base.federation.findResources('AWS::Lambda::LayerVersion'));
    // The core, and the agent settings (ConfigLayer).
    expect(layers).toHaveLength(2);
    const core = base.stacks.federation.resolve(base.stacks.federation.coreLayer.layer.layerVersionArn);
    const settings = base.stacks.federation.resolve(base.stacks.federation.configLayer.layer.layerVersionArn);
    expect([core, settings].map((ref) => ref.Ref).sort()).toEqual([...layers].sort());
    const functions = base.federation.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions)).toHaveLength(FUNCTION_NAMES.length);
    for (const fn of Object.values(functions)) {
      // Order is CDK's (sorted); the two layers' paths do not overlap.
      expect(fn.Properties.Layers).toHaveLength(2);
      expect(fn.Properties.Layers).toEqual(expect.arrayContaining([core, settings]));
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.Handler).toBe('index.handler');
      const logGroup = resourcesOf(base.federation)[fn.Properties.LoggingConfig.LogGroup.Ref]!;
      expect(logGroup.Properties!.RetentionInDays).toBe(30);
    }
    base.federation.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleRuntimes: ['nodejs22.x'],
      CompatibleArchitectures: Match.arrayWith(['arm64']),
    });
  });

  it('passes the validated config as a file of its layer and the generated resource names through the environment', () => {
    const file = join(withSources.stacks.federation.configLayer.directory, 'federation', 'config.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(parseAgentConfig(sourcesConfig));
    const env = (name: string) =>
      resourcesOf(withSources.federation)[functionOf(withSources.federation, name)]!.Properties!
        .Environment as {
        Variables: Record<string, unknown>;
      };
    for (const name of FUNCTION_NAMES) {
      const vars = env(name).Variables;
      expect(vars.FED_CONFIG).toBeUndefined();
      expect(vars.FED_CONFIG_FILE).toBe('/opt/federation/config.json');
      expect(vars.FED_AGENT_ID).toBe('agent-1');
      expect(vars.FED_VERSION).toBe('9.9.9-test');
      expect(vars.POWERTOOLS_SERVICE_NAME).toBe(name);
      expect(vars.POWERTOOLS_METRICS_NAMESPACE).toBe('ApigwFederation');
      expect(JSON.stringify(vars.FED_TABLE_NAME)).toContain('Fn::ImportValue');
      expect(JSON.stringify(vars.FED_RELAY_TOKEN_SECRET)).toContain('SecretsRelayToken');
      expect(vars.FED_API_KEY_SECRET).toBe('ApigwFederation/api-key-hmac');
    }
    for (const name of ['discovery', 'subscriptions', 'relay-connection', 'relay-command']) {
      expect(JSON.stringify(env(name).Variables.FED_CONNECTIONS_URL)).toMatch(
        /https:\/\/.*execute-api.*\/live/,
      );
    }
    const command = env('relay-command').Variables;
    expect(command.FED_DISCOVERY_FUNCTION).toEqual({ Ref: functionOf(withSources.federation, 'discovery') });
    expect(command.FED_SUBSCRIPTIONS_FUNCTION).toEqual({
      Ref: functionOf(withSources.federation, 'subscriptions'),
    });
  });

  it('generates both secrets with Secrets Manager and never puts a value in the template', () => {
    // The relay token here, the API-key HMAC secret in the stateful stack.
    const secrets = [
      ...Object.values(base.federation.findResources('AWS::SecretsManager::Secret')),
      ...Object.values(base.stateful.findResources('AWS::SecretsManager::Secret')),
    ];
    expect(secrets).toHaveLength(2);
    for (const secret of secrets) {
      expect(secret.Properties.SecretString).toBeUndefined();
      expect(secret.Properties.GenerateSecretString).toMatchObject({ ExcludePunctuation: true });
      expect(secret.Properties.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(32);
    }
  });
});

describe('FederationStack: discovery schedule', () => {
  it('runs discovery every 15 minutes by default', () => {
    base.federation.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
    });
  });

  it('takes the schedule from the config', () => {
    withSources.federation.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0/5 * * * ? *)',
    });
  });

  it('targets the discovery function, with a dead-letter queue for events and failed async invocations', () => {
    const discovery = functionOf(base.federation, 'discovery');
    const [queue] = Object.keys(base.federation.findResources('AWS::SQS::Queue'));
    base.federation.hasResourceProperties('AWS::Events::Rule', {
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [discovery, 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queue, 'Arn'] } },
        }),
      ],
    });
    base.federation.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: discovery },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    base.federation.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
  });
});

describe('FederationStack: finish-revocations schedule', () => {
  it('invokes the subscriptions function hourly with finish-revocations, failures to its dead-letter queue', () => {
    const subscriptions = functionOf(base.federation, 'subscriptions');
    const config = Object.values(base.federation.findResources('AWS::Lambda::EventInvokeConfig')).find(
      (c) => c.Properties.FunctionName.Ref === subscriptions,
    );
    const queue = config?.Properties.DestinationConfig.OnFailure.Destination;
    expect(queue).toBeDefined();
    base.federation.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [subscriptions, 'Arn'] },
          Input: JSON.stringify({ action: 'finish-revocations' }),
          DeadLetterConfig: { Arn: queue },
        }),
      ],
    });
  });

  it('lets the functions query the sparse gsi2 the revocations are listed through, and no other index', () => {
    const indexes = new Set<string>();
    for (const policy of Object.values(base.federation.findResources('AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        for (const resource of [statement.Resource].flat()) {
          const text = JSON.stringify(resource);
          const index = /\/index\/([^"]*)/.exec(text)?.[1];
          if (index) indexes.add(index);
        }
      }
    }
    expect([...indexes].sort()).toEqual(['gsi1', 'gsi2']);
  });
});

describe('FederationStack: relay', () => {
  it('gives relay-command a multi-minute timeout beyond what it waits for, no async retry, and itself to invoke', () => {
    const fn = (name: string) => resourcesOf(base.federation)[functionOf(base.federation, name)]!.Properties!;
    const command = fn('relay-command') as { Timeout: number };
    const subscriptions = fn('subscriptions') as { Timeout: number };
    // It waits for a synchronous subscriptions invocation, and a share of a sync runs for minutes.
    expect(command.Timeout).toBeGreaterThan(subscriptions.Timeout);
    expect(command.Timeout).toBeGreaterThanOrEqual(300);
    base.federation.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionOf(base.federation, 'relay-command') },
      MaximumRetryAttempts: 0,
    });
    base.federation.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Action: 'lambda:InvokeFunction',
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [functionOf(base.federation, 'relay-command'), 'Arn'] },
          },
        ],
      },
    });
  });

  it('routes $connect/$disconnect to relay-connection and every command and $default to relay-command', () => {
    const integrations = resourcesOf(base.federation);
    const target = (routeKey: string) => {
      const route = Object.values(base.federation.findResources('AWS::ApiGatewayV2::Route')).find(
        (r) => r.Properties.RouteKey === routeKey,
      );
      expect(route, routeKey).toBeDefined();
      const integrationId = (route!.Properties.Target['Fn::Join'][1][1] as { Ref: string }).Ref;
      const uri = JSON.stringify(integrations[integrationId]!.Properties!.IntegrationUri);
      return FUNCTION_NAMES.find((name) => uri.includes(functionOf(base.federation, name)));
    };
    const routes = Object.values(base.federation.findResources('AWS::ApiGatewayV2::Route')).map(
      (r) => r.Properties.RouteKey,
    );
    expect(routes.sort()).toEqual(['$connect', '$default', '$disconnect', ...RELAY_COMMAND_ROUTES].sort());
    expect(target('$connect')).toBe('relay-connection');
    expect(target('$disconnect')).toBe('relay-connection');
    for (const route of ['$default', ...RELAY_COMMAND_ROUTES]) expect(target(route)).toBe('relay-command');
    base.federation.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
  });

  it('guards $connect, and only $connect, with a REQUEST authorizer on the Authorization header', () => {
    const authorizers = Object.entries(base.federation.findResources('AWS::ApiGatewayV2::Authorizer'));
    expect(authorizers).toHaveLength(1);
    const [authorizerId, authorizer] = authorizers[0]!;
    expect(authorizer.Properties.AuthorizerType).toBe('REQUEST');
    expect(authorizer.Properties.IdentitySource).toEqual(['route.request.header.Authorization']);
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(
      functionOf(base.federation, 'relay-authorizer'),
    );
    for (const route of Object.values(base.federation.findResources('AWS::ApiGatewayV2::Route'))) {
      if (route.Properties.RouteKey === '$connect') {
        expect(route.Properties.AuthorizationType).toBe('CUSTOM');
        expect(route.Properties.AuthorizerId).toEqual({ Ref: authorizerId });
      } else {
        expect(route.Properties.AuthorizerId).toBeUndefined();
      }
    }
  });

  it('deploys a stage with throttling, and with access logs when asked (they need the account role)', () => {
    base.federation.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'live',
      AutoDeploy: true,
      AccessLogSettings: Match.absent(),
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 }),
    });
    buildTestApp({}, { relayAccessLogs: true }).federation.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'live',
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
      DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 }),
    });
  });
});

describe('FederationStack: observability', () => {
  it("alarms on the agent's own faults only: fault codes, timeouts, relay function errors, dead letters, runs", () => {
    const alarms = Object.values(base.federation.findResources('AWS::CloudWatch::Alarm'));
    const byMetric = (name: string) => alarms.filter((a) => a.Properties.MetricName === name);
    const functionName = (name: string) => {
      const [id] = Object.entries(base.federation.findResources('AWS::Lambda::Function')).find(
        ([, r]) =>
          (r.Properties as { Environment?: { Variables?: Record<string, unknown> } }).Environment?.Variables
            ?.POWERTOOLS_SERVICE_NAME === name,
      )!;
      return id;
    };
    // Client mistakes (VALIDATION, NOT_FOUND, CONFLICT, ...) are function errors of discovery and
    // subscriptions: their Lambda Errors are not alarmed; the relay functions fail only on faults.
    const lambdaErrors = byMetric('Errors').filter((a) => a.Properties.Namespace === 'AWS/Lambda');
    expect(lambdaErrors.map((a) => a.Properties.Dimensions[0].Value.Ref).sort()).toEqual(
      ['relay-authorizer', 'relay-command', 'relay-connection'].map(functionName).sort(),
    );
    // The handlers' `Faults` metric (fault codes only) and timeouts (Duration at 95% of the timeout).
    const faults = byMetric('Faults');
    expect(faults.map((a) => a.Properties.Dimensions)).toEqual(
      expect.arrayContaining([
        [{ Name: 'service', Value: 'discovery' }],
        [{ Name: 'service', Value: 'subscriptions' }],
      ]),
    );
    expect(faults).toHaveLength(2);
    for (const a of faults)
      expect(a.Properties).toMatchObject({ Namespace: 'ApigwFederation', Threshold: 1 });
    const timeouts = byMetric('Duration');
    expect(timeouts).toHaveLength(2);
    for (const a of timeouts)
      expect(a.Properties).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Maximum' });
    expect(timeouts.map((a) => a.Properties.Threshold).sort((x: number, y: number) => x - y)).toEqual([
      0.95 * 30_000,
      0.95 * 600_000,
    ]);
    // Discovery's and subscriptions' (revoke-keys) dead-letter queues.
    expect(byMetric('ApproximateNumberOfMessagesVisible')).toHaveLength(2);
    expect(alarms).toHaveLength(3 + 2 + 2 + 2 + 2);
    for (const name of ['FailedRuns', 'PartialRuns']) {
      expect(byMetric(name)).toHaveLength(1);
      expect(byMetric(name)[0]!.Properties).toMatchObject({
        Namespace: 'ApigwFederation',
        Dimensions: [{ Name: 'service', Value: 'discovery' }],
      });
    }
  });

  it('has a dashboard with runs, API calls, errors, throttles and subscription results', () => {
    const [dashboard] = Object.values(base.federation.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard!.Properties.DashboardBody);
    for (const metric of [
      'Runs',
      'PartialRuns',
      'FailedRuns',
      'ApiCalls',
      'Throttles',
      'Errors',
      'Subscribed',
      'Unsubscribed',
      'SubscriptionErrors',
    ]) {
      expect(body).toContain(`\\"${metric}\\"`);
    }
  });
});

describe('FederationStack: outputs', () => {
  it('outputs the relay URL, the connections URL, function names, secret ARNs and role ARNs', () => {
    const outputs = base.federation.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.RelayUrl!.Value)).toContain('wss://');
    expect(JSON.stringify(outputs.ConnectionsUrl!.Value)).toContain('https://');
    expect(outputs.DiscoveryFunctionName!.Value).toEqual({ Ref: functionOf(base.federation, 'discovery') });
    expect(outputs.SubscriptionsFunctionName!.Value).toEqual({
      Ref: functionOf(base.federation, 'subscriptions'),
    });
    expect(outputs.RelayAuthorizerFunctionName!.Value).toEqual({
      Ref: functionOf(base.federation, 'relay-authorizer'),
    });
    expect(outputs.RelayConnectionFunctionName!.Value).toEqual({
      Ref: functionOf(base.federation, 'relay-connection'),
    });
    expect(outputs.RelayCommandFunctionName!.Value).toEqual({
      Ref: functionOf(base.federation, 'relay-command'),
    });
    expect(JSON.stringify(outputs.RelayTokenSecretArn!.Value)).toContain('SecretsRelayToken');
    expect(outputs.ApiKeySecretArn).toBeUndefined();
    base.stateful.hasOutput('ApiKeySecretArn', { Value: { Ref: API_KEY_SECRET_LOGICAL_ID } });
    expect(outputs.DiscoveryRoleArn!.Value).toEqual({
      'Fn::GetAtt': [roleOf(base.federation, 'discovery'), 'Arn'],
    });
    expect(outputs.SubscriptionsRoleArn!.Value).toEqual({
      'Fn::GetAtt': [roleOf(base.federation, 'subscriptions'), 'Arn'],
    });
  });
});

describe('MemberAccountStack', () => {
  it('creates a role carrying exactly the documented policy', () => {
    const roles = Object.values(withSources.member!.findResources('AWS::IAM::Role'));
    expect(roles).toHaveLength(1);
    const policies = roles[0]!.Properties.Policies as { PolicyDocument: unknown }[];
    expect(policies).toHaveLength(1);
    const normalise = (doc: {
      Version: string;
      Statement: { Effect: string; Action: unknown; Resource: unknown }[];
    }) => ({
      Version: doc.Version,
      Statement: doc.Statement.map((s) => ({
        Effect: s.Effect,
        Action: asArray(s.Action),
        // An environment-agnostic stack: the partition is `AWS::Partition`.
        Resource: asArray(inPartition(s.Resource)),
      })),
    });
    expect(normalise(policies[0]!.PolicyDocument as never)).toEqual(documented);
    expect(withSources.member!.findResources('AWS::IAM::Policy')).toEqual({});
  });

  it("trusts only the agent's discovery and subscriptions roles", () => {
    withSources.member!.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'apigw-federation-member',
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: {
              AWS: [
                'arn:aws:iam::111122223333:role/agent-discovery',
                'arn:aws:iam::111122223333:role/agent-subscriptions',
              ],
            },
          },
        ],
      },
    });
  });
});

describe('IAM: opt-in sweepLostKeys (GET /apikeys for the lost-key sweeper)', () => {
  let on: TestApp;
  let onWithSources: TestApp;
  const getApiKeys = {
    Effect: 'Allow',
    Action: ['apigateway:GET'],
    Resource: ['arn:aws:apigateway:*::/apikeys'],
  };

  beforeAll(() => {
    on = buildTestApp({ sweepLostKeys: true });
    onWithSources = buildTestApp({ ...sourcesConfig, sweepLostKeys: true });
  });

  it('keeps the documented statements verbatim and the opt-in statement apart from them', () => {
    expect(JSON.parse(JSON.stringify(DOCUMENTED_POLICY))).toEqual(documented);
    expect(JSON.parse(JSON.stringify(OPT_IN_STATEMENTS.sweepLostKeys))).toEqual(getApiKeys);
    const documentedGets = DOCUMENTED_POLICY.Statement.filter((st) =>
      (st.Action as readonly string[]).includes('apigateway:GET'),
    );
    expect(documentedGets.flatMap((st) => st.Resource)).not.toContain('arn:aws:apigateway:*::/apikeys');
  });

  it('is off by default: subscriptions gets exactly the documented POST and DELETE', () => {
    const statements = apiGatewayStatements(
      statementsOfRole(base.federation, roleOf(base.federation, 'subscriptions')),
    );
    expect(statements).toEqual([documented.Statement[1], documented.Statement[2]]);
    expect(statements.some((s) => s.Action.includes('apigateway:GET'))).toBe(false);
  });

  it('gives subscriptions exactly the documented POST and DELETE plus one GET /apikeys statement', () => {
    const statements = apiGatewayStatements(
      statementsOfRole(on.federation, roleOf(on.federation, 'subscriptions')),
    );
    expect(statements).toHaveLength(3);
    expect(statements).toEqual(
      expect.arrayContaining([documented.Statement[1], documented.Statement[2], getApiKeys]),
    );
    expect(apiGatewayPolicyJson('subscriptions', { optIns: ['sweepLostKeys'] }).Statement).toEqual([
      documented.Statement[1],
      documented.Statement[2],
      getApiKeys,
    ]);
  });

  it('leaves discovery and the relay functions unchanged', () => {
    expect(apiGatewayStatements(statementsOfRole(on.federation, roleOf(on.federation, 'discovery')))).toEqual(
      [documented.Statement[0]],
    );
    for (const name of ['relay-authorizer', 'relay-connection', 'relay-command']) {
      expect(apiGatewayStatements(statementsOfRole(on.federation, roleOf(on.federation, name)))).toEqual([]);
    }
  });

  it('puts the GET statement in the member-account session policy of subscriptions only', () => {
    const sessionPolicy = (t: TestApp, name: string) => {
      const fn = resourcesOf(t.federation)[functionOf(t.federation, name)]!;
      const env = (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      return JSON.parse(env.FED_ASSUME_ROLE_POLICY as string) as unknown;
    };
    expect(sessionPolicy(onWithSources, 'subscriptions')).toEqual(
      apiGatewayPolicyJson('subscriptions', { optIns: ['sweepLostKeys'] }),
    );
    expect(sessionPolicy(onWithSources, 'discovery')).toEqual(apiGatewayPolicyJson('discovery'));
    expect(sessionPolicy(withSources, 'subscriptions')).toEqual(apiGatewayPolicyJson('subscriptions'));
  });

  it('narrows the GET statement to the discovered regions when scopeApiGatewayRegions is set', () => {
    const scoped = buildTestApp({ ...sourcesConfig, sweepLostKeys: true }, { scopeApiGatewayRegions: true });
    const gets = apiGatewayStatements(
      statementsOfRole(scoped.federation, roleOf(scoped.federation, 'subscriptions')),
    ).filter((s) => s.Action.includes('apigateway:GET'));
    expect(gets).toHaveLength(1);
    expect(gets[0]!.Action).toEqual(['apigateway:GET']);
    expect([...(gets[0]!.Resource as string[])].sort()).toEqual([
      'arn:aws:apigateway:eu-central-1::/apikeys',
      'arn:aws:apigateway:eu-west-1::/apikeys',
      'arn:aws:apigateway:us-east-1::/apikeys',
    ]);
  });

  it('rejects an opt-in asked for another capability', () => {
    expect(() => apiGatewayPolicyJson('discovery', { optIns: ['sweepLostKeys'] })).toThrow(/subscriptions/);
  });

  it('stays clean under cdk-nag AwsSolutions, with the wildcard acknowledged on the opt-in policy only', () => {
    for (const t of [on, onWithSources]) {
      const report = new AwsSolutionsChecks().validateScope(t.app);
      expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
        [],
      );
    }
    const policy = on.stacks.federation.subscriptions.sweepLostKeysPolicy;
    const acks = policy!.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) => Object.keys(entry.data as Record<string, string>))
      .map((id) => id.replace(/^annotation::/i, ''));
    expect(acks).toEqual(['AwsSolutions-IAM5[Resource::arn:aws:apigateway:*::/apikeys]']);
    expect(base.stacks.federation.subscriptions.sweepLostKeysPolicy).toBeUndefined();
  });

  it('grants the member-account role the opt-in statement only when the sweeper is configured', () => {
    const member = { trustedRoleArns: ['arn:aws:iam::111122223333:role/agent-subscriptions'] };
    const policies = (t: TestApp) =>
      Object.values(resourcesOf(t.member!))
        .filter((r) => r.Type === 'AWS::IAM::Role')
        .flatMap((r) => (r.Properties?.Policies ?? []) as { PolicyName: string; PolicyDocument: unknown }[]);
    const withSweeper = buildTestApp({ ...sourcesConfig, sweepLostKeys: true }, { member });
    expect(policies(withSweeper).map((p) => p.PolicyName)).toEqual([
      'DocumentedMinimumPolicy',
      'SweepLostKeys',
    ]);
    const sweeperPolicy = policies(withSweeper)[1]!.PolicyDocument as { Statement: { Resource: unknown }[] };
    expect({
      ...sweeperPolicy,
      Statement: sweeperPolicy.Statement.map((st) => ({ ...st, Resource: inPartition(st.Resource) })),
    }).toEqual({
      Version: '2012-10-17',
      // CloudFormation's rendering of one-element lists.
      Statement: [{ Effect: 'Allow', Action: 'apigateway:GET', Resource: 'arn:aws:apigateway:*::/apikeys' }],
    });
    expect(policies(buildTestApp(sourcesConfig, { member })).map((p) => p.PolicyName)).toEqual([
      'DocumentedMinimumPolicy',
    ]);
    const report = new AwsSolutionsChecks().validateScope(withSweeper.app);
    expect(report.violations).toEqual([]);
  });
});
