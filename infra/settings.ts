import { loadConfigFile, parseAgentConfig } from '../layers/federation-core/src/config/load.js';
import { ConfigError } from '../layers/federation-core/src/errors.js';
import type { FederationAppSettings } from './federation-app.js';

/** CDK context keys the app understands (`-c key=value` or `cdk.json` `context`). */
export const CONTEXT_KEYS = [
  'configFile',
  'config',
  'scopeApiGatewayRegions',
  'relayStageName',
  'alarmTopicArn',
  'apiGatewayCloudWatchRole',
  'relayAccessLogs',
  'replaceApiGatewayCloudWatchRole',
  'stackPrefix',
  'memberTrustedRoleArns',
  'memberRoleName',
  'memberAccount',
  'memberRegion',
  'agentEventBusArn',
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

export interface SettingsInput {
  /** Context values by key (undefined when not given). */
  readonly context: Partial<Record<ContextKey, unknown>>;
  readonly version: string;
  readonly account?: string;
  readonly region?: string;
}

function optionalString(
  key: ContextKey,
  value: unknown,
  pattern?: RegExp,
  expected?: string,
): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || (pattern && !pattern.test(value))) {
    throw new ConfigError(
      `Invalid context ${key}: expected ${expected ?? 'a string'} (received ${JSON.stringify(value)})`,
    );
  }
  return value;
}

function optionalBoolean(key: ContextKey, value: unknown): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new ConfigError(`Invalid context ${key}: expected true or false (received ${JSON.stringify(value)})`);
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

function roleArnList(key: ContextKey, value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let list: unknown = value;
  if (typeof value === 'string') {
    const text = value.trim();
    try {
      list = text.startsWith('[') ? JSON.parse(text) : text.split(',').map((s) => s.trim());
    } catch (cause) {
      throw new ConfigError(`Invalid context ${key}: not valid JSON (${(cause as Error).message})`, {
        cause,
      });
    }
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(
      `Invalid context ${key}: expected a JSON array or comma-separated list of IAM role ARNs (received ${JSON.stringify(value)})`,
    );
  }
  list.forEach((arn, index) => {
    if (typeof arn !== 'string' || !ROLE_ARN.test(arn)) {
      throw new ConfigError(
        `Invalid context ${key}[${index}]: expected an IAM role ARN like 'arn:aws:iam::111122223333:role/name' (received ${JSON.stringify(arn)})`,
      );
    }
  });
  return list as string[];
}

/**
 * Turns CDK context into validated app settings. The agent settings come from `-c configFile=path` (a
 * JSON file) or `-c config='{...}'` (inline JSON, or an object in `cdk.json`), validated by the core's
 * schema; an invalid value throws a ConfigError naming the field, what was received and what was expected.
 */
export function resolveAppSettings(input: SettingsInput): FederationAppSettings {
  const { context } = input;
  if (context.configFile !== undefined && context.config !== undefined) {
    throw new ConfigError('Invalid context: give either configFile or config, not both');
  }
  let config: FederationAppSettings['config'];
  if (context.configFile !== undefined) {
    const path = optionalString('configFile', context.configFile);
    config = path ? loadConfigFile(path) : parseAgentConfig({}, 'config');
  } else if (typeof context.config === 'string') {
    let json: unknown;
    try {
      json = JSON.parse(context.config);
    } catch (cause) {
      throw new ConfigError(`Invalid context config: not valid JSON (${(cause as Error).message})`, {
        cause,
      });
    }
    config = parseAgentConfig(json, 'config');
  } else {
    config = parseAgentConfig(context.config ?? {}, 'config');
  }

  const trustedRoleArns = roleArnList('memberTrustedRoleArns', context.memberTrustedRoleArns);
  const memberAccount = optionalString(
    'memberAccount',
    context.memberAccount,
    /^\d{12}$/,
    'a 12-digit account id',
  );
  const memberRegion = optionalString(
    'memberRegion',
    context.memberRegion,
    /^[a-z]{2}(-[a-z]+)+-\d$/,
    'a region',
  );
  if (!trustedRoleArns && (memberAccount || memberRegion || context.memberRoleName)) {
    throw new ConfigError(
      'Invalid context: memberAccount/memberRegion/memberRoleName need memberTrustedRoleArns (the agent role ARNs)',
    );
  }
  const env = input.account || input.region ? { account: input.account, region: input.region } : undefined;
  return {
    config,
    version: input.version,
    env,
    stackPrefix: optionalString(
      'stackPrefix',
      context.stackPrefix,
      /^[A-Za-z][A-Za-z0-9-]{0,100}$/,
      'a stack name',
    ),
    scopeApiGatewayRegions: optionalBoolean('scopeApiGatewayRegions', context.scopeApiGatewayRegions),
    apiGatewayCloudWatchRole: optionalBoolean('apiGatewayCloudWatchRole', context.apiGatewayCloudWatchRole),
    relayAccessLogs: optionalBoolean('relayAccessLogs', context.relayAccessLogs),
    replaceApiGatewayCloudWatchRole: optionalBoolean(
      'replaceApiGatewayCloudWatchRole',
      context.replaceApiGatewayCloudWatchRole,
    ),
    relayStageName: optionalString(
      'relayStageName',
      context.relayStageName,
      /^[A-Za-z0-9_-]{1,128}$/,
      'a stage name',
    ),
    alarmTopicArn: optionalString(
      'alarmTopicArn',
      context.alarmTopicArn,
      /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/,
      'an SNS topic ARN',
    ),
    member: trustedRoleArns
      ? {
          trustedRoleArns,
          roleName: optionalString(
            'memberRoleName',
            context.memberRoleName,
            /^[\w+=,.@-]{1,64}$/,
            'an IAM role name',
          ),
          env: memberAccount || memberRegion ? { account: memberAccount, region: memberRegion } : undefined,
          agentEventBusArn: optionalString(
            'agentEventBusArn',
            context.agentEventBusArn,
            /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[\w.-]+$/,
            'an EventBridge event bus ARN',
          ),
        }
      : undefined,
  };
}
