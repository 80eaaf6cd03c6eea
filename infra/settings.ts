import { z } from 'zod';
import { formatIssues, loadConfigFile, parseAgentConfig } from '../layers/federation-core/src/config/load.js';
import { ConfigError } from '../layers/federation-core/src/errors.js';
import type { FederationAppSettings } from './federation-app.js';

/** A context value left unset: CDK gives `undefined`, a `-c key=` gives `''`, `cdk.json` may hold `null`. */
const unset = (value: unknown) => (value === undefined || value === null || value === '' ? undefined : value);

/** An optional string matching `pattern`; `expected` says what it should be. */
const text = (pattern: RegExp, expected: string) =>
  z.preprocess(
    unset,
    z
      .string({ error: `expected ${expected}` })
      .regex(pattern, `expected ${expected}`)
      .optional(),
  );

/** An optional boolean: `true`/`false`, or their strings (`-c key=true`). */
const flag = z.preprocess(
  (value) => (value === 'true' ? true : value === 'false' ? false : unset(value)),
  z.boolean({ error: 'expected true or false' }).optional(),
);

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

/** Optional IAM role ARNs: a JSON array, a JSON array in a string, or a comma-separated string. */
const roleArns = z.preprocess(
  (value, ctx) => {
    const given = unset(value);
    if (typeof given !== 'string') return given;
    const trimmed = given.trim();
    if (!trimmed.startsWith('[')) return trimmed.split(',').map((arn) => arn.trim());
    try {
      return JSON.parse(trimmed);
    } catch (cause) {
      ctx.addIssue({ code: 'custom', message: `not valid JSON (${(cause as Error).message})`, input: value });
      return z.NEVER;
    }
  },
  z
    .array(
      z
        .string({ error: "expected an IAM role ARN like 'arn:aws:iam::111122223333:role/name'" })
        .regex(ROLE_ARN, "expected an IAM role ARN like 'arn:aws:iam::111122223333:role/name'"),
      { error: 'expected a JSON array or comma-separated list of IAM role ARNs' },
    )
    .min(1, 'expected a JSON array or comma-separated list of IAM role ARNs')
    .optional(),
);

/**
 * The CDK context the app understands (`-c key=value` or `cdk.json` `context`), each key's rule. The
 * agent settings (`configFile`, `config`) are validated by the core's schema afterwards.
 */
const ContextSchema = z
  .object({
    /** A JSON file of agent settings (`''` or `null`: the defaults). */
    configFile: z.union([z.string(), z.null()], { error: 'expected a file path' }).optional(),
    /** Inline JSON (`-c config='{...}'`) or an object (`cdk.json`). */
    config: z.unknown().optional(),
    scopeApiGatewayRegions: flag,
    relayStageName: text(/^[A-Za-z0-9_-]{1,128}$/, 'a stage name'),
    alarmTopicArn: text(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/, 'an SNS topic ARN'),
    apiGatewayCloudWatchRole: flag,
    relayAccessLogs: flag,
    replaceApiGatewayCloudWatchRole: flag,
    stackPrefix: text(/^[A-Za-z][A-Za-z0-9-]{0,100}$/, 'a stack name'),
    memberTrustedRoleArns: roleArns,
    memberRoleName: text(/^[\w+=,.@-]{1,64}$/, 'an IAM role name'),
    memberAccount: text(/^\d{12}$/, 'a 12-digit account id'),
    memberRegion: text(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region'),
    agentEventBusArn: text(
      /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[\w.-]+$/,
      'an EventBridge event bus ARN',
    ),
  })
  .superRefine((context, ctx) => {
    if (context.configFile !== undefined && context.config !== undefined)
      ctx.addIssue({
        code: 'custom',
        message: 'give either configFile or config, not both',
        input: undefined,
      });
    if (
      !context.memberTrustedRoleArns &&
      (context.memberAccount || context.memberRegion || context.memberRoleName)
    )
      ctx.addIssue({
        code: 'custom',
        message: 'memberAccount/memberRegion/memberRoleName need memberTrustedRoleArns (the agent role ARNs)',
        input: undefined,
      });
  });

export type ContextKey = keyof z.input<typeof ContextSchema>;

/** CDK context keys the app understands, in the schema's order. */
export const CONTEXT_KEYS = Object.keys(ContextSchema.shape) as readonly ContextKey[];

export interface SettingsInput {
  /** Context values by key (undefined when not given). */
  readonly context: Partial<Record<ContextKey, unknown>>;
  readonly version: string;
  readonly account?: string;
  readonly region?: string;
}

/**
 * Turns CDK context into validated app settings. The agent settings come from `-c configFile=path` (a
 * JSON file) or `-c config='{...}'` (inline JSON, or an object in `cdk.json`), validated by the core's
 * schema; an invalid value throws a ConfigError naming the field, what was received and what was expected.
 */
export function resolveAppSettings(input: SettingsInput): FederationAppSettings {
  const parsed = ContextSchema.safeParse(input.context, { reportInput: true });
  if (!parsed.success) throw new ConfigError(`Invalid context: ${formatIssues(parsed.error, '')}`);
  const context = parsed.data;
  let config: FederationAppSettings['config'];
  if (context.configFile !== undefined) {
    config = context.configFile ? loadConfigFile(context.configFile) : parseAgentConfig({}, 'config');
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

  const { memberTrustedRoleArns: trustedRoleArns, memberAccount, memberRegion } = context;
  const env = input.account || input.region ? { account: input.account, region: input.region } : undefined;
  return {
    config,
    version: input.version,
    env,
    stackPrefix: context.stackPrefix,
    scopeApiGatewayRegions: context.scopeApiGatewayRegions,
    apiGatewayCloudWatchRole: context.apiGatewayCloudWatchRole,
    relayAccessLogs: context.relayAccessLogs,
    replaceApiGatewayCloudWatchRole: context.replaceApiGatewayCloudWatchRole,
    relayStageName: context.relayStageName,
    alarmTopicArn: context.alarmTopicArn,
    member: trustedRoleArns
      ? {
          trustedRoleArns,
          roleName: context.memberRoleName,
          env: memberAccount || memberRegion ? { account: memberAccount, region: memberRegion } : undefined,
          agentEventBusArn: context.agentEventBusArn,
        }
      : undefined,
  };
}
