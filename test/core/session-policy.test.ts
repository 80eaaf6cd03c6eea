import { describe, expect, it } from 'vitest';
import { apiGatewayPolicyJson } from '../../infra/iam/documented-policy.js';
import {
  SESSION_POLICY_MAX_CHARS,
  sessionPoliciesByRole,
  sessionPolicyForRegions,
} from '../../layers/federation-core/src/aws/session-policy.js';
import { loadConfig } from '../../layers/federation-core/src/config/load.js';

/** The twelve longest-named commercial regions, and GovCloud's partition: the worst case for size. */
const REGIONS = [
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'eu-central-1',
  'eu-central-2',
  'ca-central-1',
  'us-gov-west-1',
];
const role = (i: number) => `arn:aws-us-gov:iam::${String(100000000000 + i)}:role/apigw-federation-member`;
const sources = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, roleArn: role(i), regions: REGIONS }));

describe('session policy of a member-account call', () => {
  it('limits every statement to the regions of the role’s sources with aws:RequestedRegion', () => {
    const base = JSON.stringify(apiGatewayPolicyJson('discovery'));
    const policy = JSON.parse(sessionPolicyForRegions(base, ['us-east-1', 'eu-west-1', 'us-east-1']));
    expect(policy.Statement).toEqual([
      {
        ...apiGatewayPolicyJson('discovery').Statement[0],
        Condition: { StringEquals: { 'aws:RequestedRegion': ['eu-west-1', 'us-east-1'] } },
      },
    ]);
  });

  it('builds each role’s policy from its own sources only, within 2,048 characters at 20 sources × 12 regions', () => {
    const lengths: number[] = [];
    for (const [capability, optIns] of [
      ['discovery', []],
      ['subscriptions', ['sweepLostKeys']],
    ] as const) {
      const base = JSON.stringify(
        apiGatewayPolicyJson(capability, { partition: 'aws-us-gov', optIns: [...optIns] }),
      );
      const policies = sessionPoliciesByRole(base, [
        ...sources,
        { name: 'home', regions: ['us-east-1'] },
        { name: 'again', roleArn: role(0), regions: ['eu-west-1'] },
      ]);
      expect(Object.keys(policies)).toHaveLength(20);
      for (const [roleArn, text] of Object.entries(policies)) {
        lengths.push(text.length);
        expect(text.length, roleArn).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
        const regions = JSON.parse(text).Statement[0].Condition.StringEquals['aws:RequestedRegion'];
        expect(regions).toEqual(roleArn === role(0) ? [...REGIONS, 'eu-west-1'].sort() : [...REGIONS].sort());
      }
    }
    console.info(
      `session policy at 12 regions: max ${Math.max(...lengths)} of ${SESSION_POLICY_MAX_CHARS} chars`,
    );
  });

  it('refuses a policy STS would refuse, with a message', () => {
    const many = Array.from({ length: 200 }, (_, i) => `xx-region-${i}`);
    expect(() => sessionPolicyForRegions(JSON.stringify(apiGatewayPolicyJson('discovery')), many)).toThrow(
      /characters: STS allows 2048/,
    );
  });

  it('is what loadConfig hands the functions, per role ARN', () => {
    const base = JSON.stringify(apiGatewayPolicyJson('discovery'));
    const config = loadConfig({
      AWS_REGION: 'eu-west-1',
      FED_CONFIG: JSON.stringify({ sources: sources.slice(0, 2) }),
      FED_ASSUME_ROLE_POLICY: base,
    });
    expect(config.runtime.assumeRoleSessionPolicy).toEqual({
      [role(0)]: sessionPolicyForRegions(base, REGIONS),
      [role(1)]: sessionPolicyForRegions(base, REGIONS),
    });
    expect(loadConfig({ AWS_REGION: 'eu-west-1' }).runtime.assumeRoleSessionPolicy).toBeUndefined();
  });
});
