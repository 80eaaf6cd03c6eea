import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHANGE_EVENT_NAMES, changeEventPattern } from '../../layers/federation-core/src/index.js';
import { buildTestApp, resourcesOf, type TestApp } from './support.js';

const MEMBER_ARN = 'arn:aws:iam::444455556666:role/apigw-federation-member';
const sources = [
  { name: 'home', regions: ['eu-west-1', 'us-east-1'] },
  { name: 'member', roleArn: MEMBER_ARN, regions: ['eu-west-1'] },
];
const member = { trustedRoleArns: ['arn:aws:iam::111122223333:role/agent-discovery'] };

let off: TestApp;
let on: TestApp;

beforeAll(() => {
  off = buildTestApp({ sources }, { member });
  on = buildTestApp(
    { sources, changeEvents: { batchWindowSeconds: 10, forwardingAccounts: ['777788889999'] } },
    { member },
  );
});

const ofType = (t: Template, type: string) => Object.values(resourcesOf(t)).filter((r) => r.Type === type);

describe('change events in the CDK app', () => {
  it('adds nothing when changeEvents is off, and keeps the 15-minute schedule', () => {
    // the dead-letter queues of discovery and of the subscriptions function's asynchronous invocations
    expect(ofType(off.federation, 'AWS::SQS::Queue')).toHaveLength(2);
    expect(ofType(off.federation, 'AWS::Lambda::EventSourceMapping')).toHaveLength(0);
    expect(ofType(off.federation, 'AWS::Events::EventBusPolicy')).toHaveLength(0);
    const rules = ofType(off.federation, 'AWS::Events::Rule');
    // discovery's, and the subscriptions function's hourly finish-revocations
    expect(rules.map((r) => r.Properties?.ScheduleExpression).sort()).toEqual([
      'rate(1 hour)',
      'rate(15 minutes)',
    ]);
    expect(ofType(off.member as Template, 'AWS::Events::Rule')).toHaveLength(0);
    expect(off.stacks.forwarding).toEqual([]);
  });

  it('routes the API Gateway write calls through a queue with a batching window to discovery', () => {
    const rules = ofType(on.federation, 'AWS::Events::Rule');
    expect(
      rules
        .map((r) => r.Properties?.ScheduleExpression)
        .filter(Boolean)
        .sort(),
    ).toEqual(['rate(1 hour)', 'rate(6 hours)']);
    const [rule] = rules.filter((r) => r.Properties?.EventPattern);
    expect(rule?.Properties?.EventPattern).toEqual(changeEventPattern());
    for (const name of ['CreateDeployment', 'UpdateStage', 'DeleteRestApi', 'UpdateUsagePlan', 'TagResource'])
      expect(CHANGE_EVENT_NAMES).toContain(name);
    on.federation.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    const queues = ofType(on.federation, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(4); // + the change-event queue and its dead-letter queue
    const main = queues.find((q) => q.Properties?.RedrivePolicy);
    expect(
      (main?.Properties?.RedrivePolicy as { maxReceiveCount: number } | undefined)?.maxReceiveCount,
    ).toBe(5);
    // visibility timeout above the discovery function's 10 minutes
    expect(main?.Properties?.VisibilityTimeout).toBe(660);
  });

  it('alarms on the change-event dead-letter queue', () => {
    const alarms = ofType(on.federation, 'AWS::CloudWatch::Alarm').filter((a) =>
      String(a.Properties?.AlarmDescription).includes('change event'),
    );
    expect(alarms).toHaveLength(1);
    expect(alarms[0]?.Properties?.MetricName).toBe('ApproximateNumberOfMessagesVisible');
  });

  it('lets the member accounts put events on the bus, and only them', () => {
    const policies = ofType(on.federation, 'AWS::Events::EventBusPolicy');
    const principals = policies.map(
      (p) => (p.Properties?.Statement as { Principal: { AWS: unknown } } | undefined)?.Principal.AWS,
    );
    expect(JSON.stringify(principals)).toContain('444455556666');
    expect(JSON.stringify(principals)).toContain('777788889999');
    expect(policies).toHaveLength(2);
    for (const p of policies)
      expect((p.Properties?.Statement as { Action: string } | undefined)?.Action).toBe('events:PutEvents');
  });

  it("forwards from the member account and the agent's other regions to the agent's bus", () => {
    const bus = 'arn:aws:events:eu-west-1:111122223333:event-bus/default';
    const [rule] = ofType(on.member as Template, 'AWS::Events::Rule');
    expect(rule?.Properties?.EventPattern).toEqual(changeEventPattern());
    expect((rule?.Properties?.Targets as Array<{ Arn: string }> | undefined)?.[0]?.Arn).toBe(bus);
    expect(on.stacks.forwarding.map((s) => s.region)).toEqual(['us-east-1']);
    const forwarding = Template.fromStack(on.stacks.forwarding[0]!);
    forwarding.hasResourceProperties('AWS::Events::Rule', { Targets: [{ Arn: bus }] });
  });

  it('passes cdk-nag AwsSolutions', () => {
    const report = new AwsSolutionsChecks().validateScope(on.app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
  });
});
