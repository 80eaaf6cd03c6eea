import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { FederationFunction } from '../constructs/federation-function.js';
import {
  type ApiGatewayCapability,
  apiGatewayPolicyJson,
  documentedStatements,
  documentedStatementsJson,
  type OptIn,
  optInStatement,
  optInStatementJson,
} from './documented-policy.js';
import { acknowledgeDocumentedWildcards, acknowledgeSweeperWildcards } from './nag.js';

export interface ApiGatewayAccessProps {
  /** Narrow the documented API Gateway resources to these regions. @default - the documented `*` region */
  readonly regions?: readonly string[];
  /** Roles of other accounts the function assumes (sources' `roleArn`). @default - none */
  readonly assumeRoleArns?: readonly string[];
  /** Statements beyond the documented policy, each only when configured. @default - none */
  readonly optIns?: readonly OptIn[];
}

export interface ApiGatewayAccess {
  /** The function's part of the documented policy. */
  readonly policy: iam.Policy;
  /** The opt-in statements, in a policy of their own. */
  readonly optInPolicy?: iam.Policy;
}

/**
 * Gives a function exactly its part of the documented API Gateway policy (`ApiGatewayPolicy` in
 * `scope`), its opt-in statements apart (`SweepLostKeysPolicy`), `sts:AssumeRole` on the member roles
 * only, and the session policy it passes when it assumes them (`FED_ASSUME_ROLE_POLICY`): a member role
 * carries the whole documented policy, the session keeps only this function's part.
 */
export function grantApiGatewayAccess(
  scope: Construct,
  fn: FederationFunction,
  capability: ApiGatewayCapability,
  props: ApiGatewayAccessProps = {},
): ApiGatewayAccess {
  const { regions, optIns = [] } = props;
  const partition = Stack.of(scope).partition;
  const policy = new iam.Policy(scope, 'ApiGatewayPolicy', {
    statements: documentedStatements(capability, { regions, partition }),
    roles: [fn.role],
  });
  acknowledgeDocumentedWildcards(policy, documentedStatementsJson(capability, { regions, partition }));

  let optInPolicy: iam.Policy | undefined;
  if (optIns.includes('sweepLostKeys')) {
    optInPolicy = new iam.Policy(scope, 'SweepLostKeysPolicy', {
      statements: [optInStatement('sweepLostKeys', { regions, partition })],
      roles: [fn.role],
    });
    acknowledgeSweeperWildcards(optInPolicy, optInStatementJson('sweepLostKeys', { regions, partition }));
  }

  const roleArns = [...new Set(props.assumeRoleArns ?? [])];
  if (roleArns.length > 0) {
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: roleArns }),
    );
    // The documented `*` region: the core limits each role's session to its sources' regions
    // (`sessionPoliciesByRole`, `aws:RequestedRegion`), which keeps it within STS's 2,048 characters.
    fn.addEnvironment(
      'FED_ASSUME_ROLE_POLICY',
      Stack.of(scope).toJsonString(apiGatewayPolicyJson(capability, { partition, optIns: [...optIns] })),
    );
  }
  return { policy, optInPolicy };
}
