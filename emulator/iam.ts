/**
 * A small IAM policy evaluator for the fidelity proxy's refusal mode: identity-based statements with
 * `Effect`, `Action`/`NotAction` and `Resource`/`NotResource`, IAM wildcard semantics, explicit Deny wins.
 * Conditions are not supported: a statement with a `Condition` never matches (fail closed).
 */

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: unknown;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

const patternCache = new Map<string, RegExp>();

/** Compiles an IAM pattern: `*` matches any run of characters (including `/`), `?` exactly one. */
function compile(pattern: string, caseInsensitive: boolean): RegExp {
  const key = `${caseInsensitive ? 'i' : 's'}:${pattern}`;
  let re = patternCache.get(key);
  if (!re) {
    const body = pattern
      .split('')
      .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    re = new RegExp(`^${body}$`, caseInsensitive ? 'is' : 's');
    patternCache.set(key, re);
  }
  return re;
}

/** True when `value` matches the IAM wildcard `pattern`. Actions compare case-insensitively. */
export function iamMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  return compile(pattern, caseInsensitive).test(value);
}

function asArray(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value];
}

function statementMatches(statement: PolicyStatement, action: string, resource: string): boolean {
  if (statement.Condition !== undefined) return false;
  const actions = asArray(statement.Action);
  const notActions = asArray(statement.NotAction);
  const resources = asArray(statement.Resource);
  const notResources = asArray(statement.NotResource);
  const actionOk = actions
    ? actions.some((p) => iamMatch(p, action, true))
    : notActions
      ? !notActions.some((p) => iamMatch(p, action, true))
      : false;
  if (!actionOk) return false;
  return resources
    ? resources.some((p) => iamMatch(p, resource))
    : notResources
      ? !notResources.some((p) => iamMatch(p, resource))
      : false;
}

/** Evaluates `action` on `resource` against a policy: 'allow' only if some Allow matches and no Deny does. */
export function evaluatePolicy(policy: PolicyDocument, action: string, resource: string): 'allow' | 'deny' {
  const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];
  let allowed = false;
  for (const statement of statements) {
    if (!statementMatches(statement, action, resource)) continue;
    if (statement.Effect === 'Deny') return 'deny';
    if (statement.Effect === 'Allow') allowed = true;
  }
  return allowed ? 'allow' : 'deny';
}
