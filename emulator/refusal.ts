/**
 * IAM refusal mode: API Gateway calls are checked against an identity policy (one for everybody, or one per
 * access key) as `apigateway:<METHOD>` on `arn:aws:apigateway:<region>::<path>` and refused with 403
 * `AccessDeniedException` when it does not allow them. moto accepts everything, so this is how the tests
 * prove the least-privilege policies the stacks grant are enough, and that refusals are reported well.
 */
import { evaluatePolicy, type PolicyDocument } from './iam.js';

export interface Refusal {
  action: string;
  resource: string;
  /** The message real AWS sends with the 403. */
  message: string;
}

export interface PolicyGate {
  /** `accessKeyId` = the policy of that key only (it overrides the general one); `undefined` removes it. */
  set(policy: PolicyDocument | undefined, accessKeyId?: string): void;
  /** The refusal for an API Gateway request, or `undefined` when no policy is set or the policy allows it. */
  check(request: {
    method: string;
    /** Percent-encoded path, without query string. */
    path: string;
    region: string;
    accessKeyId: string;
    accountId: string;
  }): Refusal | undefined;
  clear(): void;
}

export function createPolicyGate(): PolicyGate {
  let general: PolicyDocument | undefined;
  const byKey = new Map<string, PolicyDocument>();
  return {
    set: (policy, accessKeyId) => {
      if (accessKeyId === undefined) general = policy;
      else if (policy) byKey.set(accessKeyId, policy);
      else byKey.delete(accessKeyId);
    },
    check: ({ method, path, region, accessKeyId, accountId }) => {
      const policy = byKey.get(accessKeyId) ?? general;
      if (!policy) return undefined;
      const action = `apigateway:${method.toUpperCase()}`;
      const resource = `arn:aws:apigateway:${region}::${decodeURIComponent(path)}`;
      if (evaluatePolicy(policy, action, resource) === 'allow') return undefined;
      const principal = `arn:aws:sts::${accountId}:assumed-role/federation-test-role/${accessKeyId || 'anonymous'}`;
      return {
        action,
        resource,
        message: `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
      };
    },
    clear: () => {
      general = undefined;
      byKey.clear();
    },
  };
}
