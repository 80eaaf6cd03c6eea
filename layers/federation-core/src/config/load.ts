import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { sessionPoliciesByRole } from '../aws/session-policy.js';
import { ConfigError } from '../errors.js';
import { type AgentConfig, AgentConfigSchema, type Source } from './schema.js';

/** Runtime wiring that deployments inject through the environment, next to the agent settings. */
export interface RuntimeSettings {
  /** AWS endpoint override (an emulator); unset on AWS. */
  readonly endpoint?: string;
  /** The region the function runs in. */
  readonly region: string;
  /** `@connections` management endpoint of the relay (https://{api}.execute-api.{region}.amazonaws.com/{stage}). */
  readonly connectionsUrl?: string;
  /** Function names the relay invokes. */
  readonly discoveryFunctionName?: string;
  readonly subscriptionsFunctionName?: string;
  readonly version: string;
  /** The fan-out queue (`FED_FAN_OUT_QUEUE_URL`): with it and `fanOut` on, runs fan out. */
  readonly fanOutQueueUrl?: string;
  /**
   * Session policy for `sts:AssumeRole` into member accounts, per role ARN: the function's part of the
   * documented policy (`FED_ASSUME_ROLE_POLICY`) limited to the regions of the sources using that role.
   */
  readonly assumeRoleSessionPolicy?: Readonly<Record<string, string>>;
}

export interface LoadedConfig {
  readonly agent: AgentConfig;
  readonly runtime: RuntimeSettings;
}

/**
 * Formats zod issues as `path: message (received ...)`, joined by `; `, so a wrong input names the
 * field and what was expected. `root` prefixes each path (`config.sources[0].name`); with `''` paths
 * start at the field (`application.name`). `received: false` leaves the received values out (relay
 * replies, which must not echo what a client sent).
 */
export function formatIssues(
  error: z.ZodError,
  root = 'config',
  options: { received?: boolean } = {},
): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.reduce<string>(
        (acc, part) =>
          typeof part === 'number' ? `${acc}[${part}]` : acc === '' ? String(part) : `${acc}.${String(part)}`,
        root,
      );
      const received =
        options.received !== false && 'input' in issue && issue.input !== undefined
          ? ` (received ${JSON.stringify(issue.input)})`
          : '';
      return path ? `${path}: ${issue.message}${received}` : `${issue.message}${received}`;
    })
    .join('; ');
}

/** Validates a settings object; throws ConfigError naming every bad field. */
export function parseAgentConfig(input: unknown, origin = 'config'): AgentConfig {
  const result = AgentConfigSchema.safeParse(input ?? {}, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(`Invalid configuration (${origin}): ${formatIssues(result.error)}`);
  }
  return result.data;
}

/** Reads and validates a JSON config file. */
export function loadConfigFile(path: string): AgentConfig {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`Cannot read config file ${path}: ${(cause as Error).message}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new ConfigError(`Config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return parseAgentConfig(json, path);
}

/**
 * The one place that reads the environment. Called once at cold start by each handler and by the
 * local runtime. Settings come from `FED_CONFIG_FILE` (a JSON file) or `FED_CONFIG` (inline JSON),
 * and resource names from the variables the CDK app sets; the variables win over the file.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let base: unknown = {};
  if (env.FED_CONFIG_FILE) {
    base = loadConfigFile(env.FED_CONFIG_FILE);
  } else if (env.FED_CONFIG) {
    try {
      base = JSON.parse(env.FED_CONFIG);
    } catch (cause) {
      throw new ConfigError(`FED_CONFIG is not valid JSON: ${(cause as Error).message}`, { cause });
    }
  }
  const overrides: Record<string, unknown> = {};
  if (env.FED_TABLE_NAME) overrides.tableName = env.FED_TABLE_NAME;
  if (env.FED_RELAY_TOKEN_SECRET) overrides.relayTokenSecretName = env.FED_RELAY_TOKEN_SECRET;
  if (env.FED_API_KEY_SECRET) overrides.apiKeySecretName = env.FED_API_KEY_SECRET;
  if (env.FED_AGENT_ID) overrides.agentId = env.FED_AGENT_ID;
  const agent = parseAgentConfig({ ...(base as object), ...overrides }, env.FED_CONFIG_FILE ?? 'config');

  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigError('AWS_REGION is not set: expected the region the agent runs in');
  return {
    agent,
    runtime: {
      endpoint: env.AWS_ENDPOINT_URL || undefined,
      region,
      connectionsUrl: env.FED_CONNECTIONS_URL || undefined,
      discoveryFunctionName: env.FED_DISCOVERY_FUNCTION || undefined,
      subscriptionsFunctionName: env.FED_SUBSCRIPTIONS_FUNCTION || undefined,
      version: env.FED_VERSION ?? '0.1.0',
      fanOutQueueUrl: env.FED_FAN_OUT_QUEUE_URL || undefined,
      assumeRoleSessionPolicy: env.FED_ASSUME_ROLE_POLICY
        ? sessionPoliciesByRole(env.FED_ASSUME_ROLE_POLICY, agent.sources)
        : undefined,
    },
  };
}

/** Sources to discover: the configured ones, or the function's own account-region. */
export function effectiveSources(agent: Pick<AgentConfig, 'sources'>, region: string): Source[] {
  return agent.sources.length > 0 ? agent.sources : [{ name: 'default', regions: [region] }];
}

/** The partition of a region (`aws`, `aws-cn`, `aws-us-gov`). */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/**
 * The role a source reaches an account through: its `roleArn`, or, for an organisation source, the
 * scope's `roleName` in that account.
 */
export function roleArnOf(
  source: Pick<Source, 'roleArn' | 'organization'>,
  accountId: string | undefined,
  region: string,
): string | undefined {
  if (source.roleArn) return source.roleArn;
  if (source.organization && accountId) {
    return `arn:${partitionOf(region)}:iam::${accountId}:role/${source.organization.roleName}`;
  }
  return undefined;
}

/** True when a source is an AWS Organizations scope (opt-in). */
export function hasOrganizationSource(agent: { readonly sources: readonly Source[] }): boolean {
  return agent.sources.some((s) => s.organization !== undefined);
}

/** Account-regions the sources name (an organisation scope counts as one account per region). */
export function accountRegionCount(agent: { readonly sources: readonly Source[] }): number {
  return agent.sources.reduce((n, s) => n + s.regions.length, 0);
}

/** Whether runs fan out (one SQS message per account-region): `fanOut.enabled`, or `auto`. */
export function fanOutEnabled(agent: {
  readonly sources: readonly Source[];
  readonly fanOut: Pick<AgentConfig['fanOut'], 'enabled'>;
}): boolean {
  const { enabled } = agent.fanOut;
  if (enabled !== 'auto') return enabled;
  return hasOrganizationSource(agent) || accountRegionCount(agent) > 8;
}
