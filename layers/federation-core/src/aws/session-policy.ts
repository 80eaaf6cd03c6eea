/**
 * Session policies of `sts:AssumeRole` into member accounts. A member role carries the whole documented
 * policy; each function passes its own part as the session policy (`FED_ASSUME_ROLE_POLICY`), and the
 * agent narrows it further to the regions of the sources that use that role, with the global condition
 * key `aws:RequestedRegion` — one short list per role instead of one ARN per resource and region, so the
 * policy stays within STS's limit whatever the number of sources and regions.
 */
import { ConfigError } from '../errors.js';

/** STS limit on the plaintext of an inline session policy (`AssumeRole` `Policy`). */
export const SESSION_POLICY_MAX_CHARS = 2048;

interface SessionStatement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/**
 * The session policy `policyJson` (an IAM policy document) limited to `regions`: every statement gets
 * `StringEquals aws:RequestedRegion`. Compact JSON; throws a ConfigError beyond STS's 2,048 characters.
 */
export function sessionPolicyForRegions(policyJson: string, regions: readonly string[]): string {
  let policy: { Version?: string; Statement: SessionStatement[] };
  try {
    policy = JSON.parse(policyJson) as typeof policy;
  } catch (cause) {
    throw new ConfigError(`FED_ASSUME_ROLE_POLICY is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const wanted = [...new Set(regions)].sort();
  const scoped = {
    Version: policy.Version ?? '2012-10-17',
    Statement: policy.Statement.map((statement) =>
      wanted.length === 0
        ? statement
        : {
            ...statement,
            Condition: {
              ...statement.Condition,
              StringEquals: { ...statement.Condition?.StringEquals, 'aws:RequestedRegion': wanted },
            },
          },
    ),
  };
  const text = JSON.stringify(scoped);
  if (text.length > SESSION_POLICY_MAX_CHARS) {
    throw new ConfigError(
      `The session policy for regions ${wanted.join(', ')} is ${text.length} characters: STS allows ${SESSION_POLICY_MAX_CHARS}`,
    );
  }
  return text;
}

/**
 * One session policy per member role: `policyJson` limited to the regions of the sources that reach
 * the account through that role.
 */
export function sessionPoliciesByRole(
  policyJson: string,
  sources: readonly {
    readonly name?: string;
    readonly roleArn?: string;
    readonly regions: readonly string[];
    readonly organization?: { readonly roleName: string };
  }[],
): Record<string, string> {
  const regionsByRole = new Map<string, string[]>();
  for (const source of sources) {
    // An organisation source's role is the same name in every account: keyed `role/<name>`.
    const key = source.roleArn ?? (source.organization ? `role/${source.organization.roleName}` : undefined);
    if (!key) continue;
    regionsByRole.set(key, [...(regionsByRole.get(key) ?? []), ...source.regions]);
  }
  return Object.fromEntries(
    [...regionsByRole].map(([roleArn, regions]) => [roleArn, sessionPolicyForRegions(policyJson, regions)]),
  );
}
