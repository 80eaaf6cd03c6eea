/**
 * Shared helpers of the infra tests: an App with the same context as `cdk.json` (bundling skipped unless
 * asked), the app's stacks, and readers over synthesized templates.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { REPO_ROOT } from '../../infra/constructs/federation-function.js';
import { createFederationApp, type FederationAppSettings } from '../../infra/federation-app.js';
import { parseAgentConfig } from '../../layers/federation-core/src/config/load.js';

/** The `context` of cdk.json, so tests synthesize with the feature flags a real `cdk synth` uses. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

export interface TestApp {
  readonly app: App;
  readonly stacks: ReturnType<typeof createFederationApp>;
  readonly federation: Template;
  readonly stateful: Template;
  readonly member?: Template;
}

/** Builds the app with `config` (raw, validated by the core) and settings; bundling skipped. */
export function buildTestApp(
  rawConfig: unknown = {},
  settings: Partial<Omit<FederationAppSettings, 'config'>> = {},
): TestApp {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stacks = createFederationApp(app, {
    config: parseAgentConfig(rawConfig),
    version: '9.9.9-test',
    env: { account: '111122223333', region: 'eu-west-1' },
    ...settings,
  });
  return {
    app,
    stacks,
    federation: Template.fromStack(stacks.federation),
    stateful: Template.fromStack(stacks.stateful),
    member: stacks.member ? Template.fromStack(stacks.member) : undefined,
  };
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

type Resources = Record<
  string,
  { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }
>;

export function resourcesOf(template: Template): Resources {
  return template.toJSON().Resources as Resources;
}

/** Logical id of the execution role of the function whose `POWERTOOLS_SERVICE_NAME` is `<name>`. */
export function roleOf(template: Template, functionName: string): string {
  for (const resource of Object.values(resourcesOf(template))) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const env = (resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables;
    if (env?.POWERTOOLS_SERVICE_NAME === functionName) {
      const role = resource.Properties?.Role as { 'Fn::GetAtt': [string, string] };
      return role['Fn::GetAtt'][0];
    }
  }
  throw new Error(`no function ${functionName} in template`);
}

/** Logical id of a function by name. */
export function functionOf(template: Template, functionName: string): string {
  for (const [id, resource] of Object.entries(resourcesOf(template))) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const env = (resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables;
    if (env?.POWERTOOLS_SERVICE_NAME === functionName) return id;
  }
  throw new Error(`no function ${functionName} in template`);
}

/** Every statement of every `AWS::IAM::Policy` attached to the role, and of the role's inline policies. */
export function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  const resources = resourcesOf(template);
  const statements: Statement[] = [];
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const roles = (resource.Properties?.Roles ?? []) as { Ref?: string }[];
    if (!roles.some((r) => r.Ref === roleLogicalId)) continue;
    const doc = resource.Properties?.PolicyDocument as { Statement: Statement[] };
    statements.push(...doc.Statement);
  }
  const role = resources[roleLogicalId];
  for (const policy of (role?.Properties?.Policies ?? []) as {
    PolicyDocument: { Statement: Statement[] };
  }[]) {
    statements.push(...policy.PolicyDocument.Statement);
  }
  return statements;
}

export const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** Statements granting any `apigateway:` action, normalised to arrays. */
export function apiGatewayStatements(
  statements: Statement[],
): { Effect: string; Action: string[]; Resource: unknown[] }[] {
  return statements
    .filter((s) => asArray(s.Action).some((a) => a.toLowerCase().startsWith('apigateway:')))
    .map((s) => ({ Effect: s.Effect, Action: asArray(s.Action), Resource: asArray(s.Resource) }));
}

/** The resolved value of a token in a stack (for comparing with template values). */
export function resolve(stack: Stack, value: unknown): unknown {
  return stack.resolve(value);
}

/**
 * A synthesized value with the partition resolved: `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},...]]}`
 * (an environment-agnostic stack) becomes the string it is in `partition`; anything else is returned as is.
 */
export function inPartition(value: unknown, partition = 'aws'): unknown {
  if (Array.isArray(value)) return value.map((v) => inPartition(v, partition));
  const join = (value as { 'Fn::Join'?: [string, unknown[]] } | null)?.['Fn::Join'];
  if (!join) return value;
  const parts = join[1].map((part) =>
    (part as { Ref?: string } | null)?.Ref === 'AWS::Partition' ? partition : inPartition(part, partition),
  );
  return parts.every((p) => typeof p === 'string') ? parts.join(join[0]) : { 'Fn::Join': [join[0], parts] };
}
