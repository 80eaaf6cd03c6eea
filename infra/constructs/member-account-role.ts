import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import {
  documentedPolicyDocument,
  documentedStatementsJson,
  optInStatement,
  optInStatementJson,
} from '../iam/documented-policy.js';
import { acknowledgeDocumentedWildcards, acknowledgeSweeperWildcards } from '../iam/nag.js';

/** Default name of the member-account role (a cross-account contract, so a fixed, known name). */
export const MEMBER_ROLE_NAME = 'apigw-federation-member';

export interface MemberAccountRoleProps {
  /** The agent's discovery and subscriptions role ARNs (outputs of the federation stack): the only principals trusted. */
  readonly trustedRoleArns: readonly string[];
  /** @default MEMBER_ROLE_NAME */
  readonly roleName?: string;
  /**
   * Also grant the opt-in `apigateway:GET` on `/apikeys` of the lost-key sweeper (set it when the
   * agent's configuration has `sweepLostKeys`). @default false
   */
  readonly sweepLostKeys?: boolean;
}

/**
 * The role a member account offers the agent: it carries the documented minimum API Gateway policy and
 * trusts only the agent's discovery and subscriptions roles. Put its ARN in the agent's config as a
 * source's `roleArn`.
 */
export class MemberAccountRole extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: MemberAccountRoleProps) {
    super(scope, id);
    if (props.trustedRoleArns.length === 0) {
      throw new Error('MemberAccountRole: expected at least one trusted agent role ARN, received none');
    }
    const partition = Stack.of(this).partition;
    const principals = [...new Set(props.trustedRoleArns)].map((arn) => new iam.ArnPrincipal(arn));
    this.role = new iam.Role(this, 'Role', {
      roleName: props.roleName ?? MEMBER_ROLE_NAME,
      description: 'apigw-federation: documented minimum API Gateway policy for the federation agent',
      assumedBy: new iam.CompositePrincipal(...principals),
      inlinePolicies: {
        DocumentedMinimumPolicy: documentedPolicyDocument({ partition }),
        // Beyond the documented policy, only when the sweeper is configured: a policy of its own.
        ...(props.sweepLostKeys
          ? {
              SweepLostKeys: new iam.PolicyDocument({
                statements: [optInStatement('sweepLostKeys', { partition })],
              }),
            }
          : {}),
      },
    });
    acknowledgeDocumentedWildcards(
      this.role,
      (['discovery', 'subscriptions'] as const).flatMap((c) => documentedStatementsJson(c, { partition })),
    );
    if (props.sweepLostKeys)
      acknowledgeSweeperWildcards(this.role, optInStatementJson('sweepLostKeys', { partition }));
  }
}
