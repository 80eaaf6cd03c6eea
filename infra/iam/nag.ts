import { Stack, Validations } from 'aws-cdk-lib';
// cdk-nag renders a resource ARN this way in its finding ids (`Resource::<Logical.Attr>/...`).
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';
import type { DocumentedStatement } from './documented-policy.js';

/** A resource (possibly holding tokens, e.g. the partition) as cdk-nag names it in a finding id. */
function finding(scope: IConstruct, resource: string): string {
  return flattenCfnReference(Stack.of(scope).resolve(resource));
}

/**
 * Acknowledges, one finding at a time, the cdk-nag `AwsSolutions-IAM5` findings of the documented API
 * Gateway resources granted on `scope`: every documented resource carries a wildcard (the region, and
 * the REST API / usage plan / key ids the agent cannot know in advance).
 */
export function acknowledgeDocumentedWildcards(
  scope: IConstruct,
  statements: readonly DocumentedStatement[],
): void {
  for (const resource of new Set(statements.flatMap((s) => s.Resource))) {
    if (!resource.includes('*')) continue;
    Validations.of(scope).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${finding(scope, resource)}]`,
      reason:
        'Documented minimum API Gateway policy (seed 000, "Minimum AWS permissions"): ids of REST APIs, stages, ' +
        'usage plans and keys are discovered or created at run time; API Gateway ARNs carry no account.',
    });
  }
}

/**
 * Acknowledges the `AwsSolutions-IAM5` findings of the opt-in `GET /apikeys` of the lost-key sweeper
 * granted on `scope`: its region is the documented `*` unless narrowed.
 */
export function acknowledgeSweeperWildcards(scope: IConstruct, statement: DocumentedStatement): void {
  for (const resource of statement.Resource) {
    if (!resource.includes('*')) continue;
    Validations.of(scope).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${finding(scope, resource)}]`,
      reason:
        'Opt-in sweepLostKeys: GetApiKeys with a name query in every region of the documented policy (its `*` ' +
        'region); the /apikeys collection has no id to narrow it to and API Gateway ARNs carry no account.',
    });
  }
}

/**
 * Acknowledges the one `AwsSolutions-IAM5` finding of a wildcard resource ARN (a token of the same stack,
 * rendered the way cdk-nag renders it) on `scope`, with its reason.
 */
export function acknowledgeResourceWildcard(scope: IConstruct, resourceArn: string, reason: string): void {
  Validations.of(scope).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${finding(scope, resourceArn)}]`,
    reason,
  });
}
