import type { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  asArray,
  buildTestApp,
  functionOf,
  resourcesOf,
  roleOf,
  statementsOfRole,
  type TestApp,
} from './support.js';

const sources = [
  { name: 'home', regions: ['eu-west-1', 'us-east-1'] },
  {
    name: 'member',
    roleArn: 'arn:aws:iam::444455556666:role/apigw-federation-member',
    regions: ['eu-west-1'],
  },
];
const organization = {
  name: 'org',
  organization: {
    ouIds: ['ou-ab12-cdef3456'],
    roleName: 'apigw-federation-member',
    regions: ['eu-west-1', 'us-east-1'],
    listingRoleArn: 'arn:aws:iam::999988887777:role/org-reader',
  },
};

let off: TestApp;
let on: TestApp;
let org: TestApp;

beforeAll(() => {
  off = buildTestApp({ sources });
  on = buildTestApp({ sources, fanOut: { enabled: true, maxConcurrency: 25, maxReceiveCount: 4 } });
  org = buildTestApp({ sources: [...sources, organization] });
});

const ofType = (t: Template, type: string) => Object.values(resourcesOf(t)).filter((r) => r.Type === type);
const envOf = (t: Template, name: string) =>
  (resourcesOf(t)[functionOf(t, name)]!.Properties!.Environment as { Variables: Record<string, unknown> })
    .Variables;
const actionsOf = (t: Template, name: string) =>
  statementsOfRole(t, roleOf(t, name)).flatMap((s) => asArray(s.Action));

describe('fan-out in the CDK app', () => {
  it('adds nothing with few account-regions (auto) and no organisation source', () => {
    // the dead-letter queues of discovery and of the subscriptions function's asynchronous invocations
    expect(ofType(off.federation, 'AWS::SQS::Queue')).toHaveLength(2);
    expect(ofType(off.federation, 'AWS::Lambda::EventSourceMapping')).toHaveLength(0);
    expect(envOf(off.federation, 'discovery').FED_FAN_OUT_QUEUE_URL).toBeUndefined();
    expect(actionsOf(off.federation, 'discovery').filter((a) => a.startsWith('organizations:'))).toEqual([]);
  });

  it('one queue with a dead-letter queue, consumed one unit at a time with a maximum concurrency', () => {
    on.federation.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 25 },
    });
    const queues = ofType(on.federation, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(4); // + the fan-out queue and its dead-letter queue
    const main = queues.find((q) => q.Properties?.RedrivePolicy);
    expect((main!.Properties!.RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount).toBe(4);
    expect(main?.Properties?.VisibilityTimeout).toBe(660); // above the discovery function's 10 minutes
    for (const q of queues) expect(q.Properties?.SqsManagedSseEnabled).toBe(true);
    expect(envOf(on.federation, 'discovery').FED_FAN_OUT_QUEUE_URL).toBeDefined();
    // The discovery function sends the units, their continuations and the deadline.
    expect(actionsOf(on.federation, 'discovery')).toEqual(expect.arrayContaining(['sqs:SendMessage']));
    // ... and no other function may (the subscriptions role sends only to its own dead-letter queue).
    const [fanOutQueueId] = Object.entries(resourcesOf(on.federation)).find(
      ([, r]) => r.Type === 'AWS::SQS::Queue' && r.Properties?.RedrivePolicy,
    )!;
    for (const name of ['subscriptions', 'relay-command', 'relay-connection', 'relay-authorizer']) {
      const sends = statementsOfRole(on.federation, roleOf(on.federation, name)).filter((st) =>
        asArray(st.Action).includes('sqs:SendMessage'),
      );
      expect(JSON.stringify(sends), name).not.toContain(fanOutQueueId);
    }
  });

  it('alarms on the fan-out dead-letter queue and on a backlog', () => {
    const alarms = ofType(on.federation, 'AWS::CloudWatch::Alarm');
    const dead = alarms.filter((a) => String(a.Properties?.AlarmDescription).includes('fan-out dead-letter'));
    expect(dead).toHaveLength(1);
    expect(dead[0]?.Properties?.MetricName).toBe('ApproximateNumberOfMessagesVisible');
    const backlog = alarms.filter((a) => a.Properties?.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(backlog).toHaveLength(1);
  });

  it('an organisation source turns fan-out on and adds the listing and the roles, only then', () => {
    expect(ofType(org.federation, 'AWS::Lambda::EventSourceMapping')).toHaveLength(1);
    const discovery = statementsOfRole(org.federation, roleOf(org.federation, 'discovery'));
    const listing = discovery.filter((s) => asArray(s.Action).some((a) => a.startsWith('organizations:')));
    expect(listing).toHaveLength(1);
    expect(asArray(listing[0]!.Action).sort()).toEqual([
      'organizations:ListAccountsForParent',
      'organizations:ListChildren',
    ]);
    const assumed = (name: string) =>
      JSON.stringify(
        statementsOfRole(org.federation, roleOf(org.federation, name))
          .filter((s) => asArray(s.Action).includes('sts:AssumeRole'))
          .flatMap((s) => asArray(s.Resource)),
      );
    expect(assumed('discovery')).toContain(':iam::*:role/apigw-federation-member');
    expect(assumed('discovery')).toContain('arn:aws:iam::999988887777:role/org-reader');
    // Subscriptions create keys in the organisation's accounts, but never list them.
    expect(assumed('subscriptions')).toContain(':iam::*:role/apigw-federation-member');
    expect(assumed('subscriptions')).not.toContain('org-reader');
    expect(actionsOf(org.federation, 'subscriptions').filter((a) => a.startsWith('organizations:'))).toEqual(
      [],
    );
    expect(envOf(org.federation, 'subscriptions').FED_ASSUME_ROLE_POLICY).toBeDefined();
  });

  it('passes cdk-nag AwsSolutions', () => {
    for (const app of [on, org]) {
      const report = new AwsSolutionsChecks().validateScope(app.app);
      expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
        [],
      );
    }
  });
});
