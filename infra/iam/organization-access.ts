/**
 * Organisation sources (opt-in, outside the documented API Gateway policy): what the discovery function
 * needs to list an AWS Organizations scope's accounts, and the role names the functions assume in them.
 * Nothing of this exists without an organisation source.
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { Source } from '../../layers/federation-core/src/config/schema.js';
import type { FederationFunction } from '../constructs/federation-function.js';
import { acknowledgeResourceWildcard } from './nag.js';

/** The organisation sources of a configuration. */
export function organizationSources(sources: readonly Source[]): Source[] {
  return sources.filter((s) => s.organization !== undefined);
}

/**
 * The role ARNs the functions assume in the accounts of organisation scopes: the scope's role name in
 * any account (`arn:<partition>:iam::*:role/<roleName>`), the accounts being listed at run time.
 */
export function organizationRoleArns(scope: Construct, sources: readonly Source[]): string[] {
  const partition = Stack.of(scope).partition;
  return [
    ...new Set(
      organizationSources(sources).map((s) => `arn:${partition}:iam::*:role/${s.organization?.roleName}`),
    ),
  ];
}

/** Acknowledges the wildcard account of the organisation roles on the function's role. */
export function acknowledgeOrganizationRoles(fn: FederationFunction, roleArns: readonly string[]): void {
  for (const arn of roleArns) {
    acknowledgeResourceWildcard(
      fn.role,
      arn,
      'Opt-in organisation source: the role of the scope is assumed in each account listed from AWS ' +
        'Organizations at run time; the accounts are not known at synth time.',
    );
  }
}

/**
 * The listing of organisation scopes (`OrganizationSourcesPolicy`): `organizations:ListAccountsForParent`
 * and `organizations:ListChildren` (they support no resource narrower than `*` for a scope that includes
 * nested OUs), and `sts:AssumeRole` on the scopes' `listingRoleArn`s.
 */
export function grantOrganizationListing(
  scope: Construct,
  fn: FederationFunction,
  sources: readonly Source[],
): iam.Policy | undefined {
  const scopes = organizationSources(sources);
  if (scopes.length === 0) return undefined;
  const listingRoles = [
    ...new Set(
      scopes.flatMap((s) => (s.organization?.listingRoleArn ? [s.organization.listingRoleArn] : [])),
    ),
  ];
  const policy = new iam.Policy(scope, 'OrganizationSourcesPolicy', {
    statements: [
      new iam.PolicyStatement({
        actions: ['organizations:ListAccountsForParent', 'organizations:ListChildren'],
        resources: ['*'],
      }),
      ...(listingRoles.length > 0
        ? [new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: listingRoles })]
        : []),
    ],
    roles: [fn.role],
  });
  acknowledgeResourceWildcard(
    policy,
    '*',
    'Opt-in organisation source: listing the accounts under OUs (nested OUs included) of the organisation, ' +
      'whose id is not known at synth time.',
  );
  return policy;
}
