import { z } from 'zod';

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
const ACCOUNT_ID = /^\d{12}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** A label is `key` or `key=value`, taken from REST API tags. */
const LABEL = /^[\p{L}\p{N}\s_.:/+\-@]{1,128}(=[\p{L}\p{N}\s_.:/+\-@]{0,256})?$/u;
const SCHEDULE = /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$/;

/** Unique name of a source, used in summaries and in `{ "sources": [...] }` discovery requests. */
export const SourceNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of letters, digits, '_', '.', '-'");

export const SourceSchema = z.strictObject({
  name: SourceNameSchema,
  /** Account to discover; defaults to the account of the function's own credentials. */
  accountId: z.string().regex(ACCOUNT_ID, 'expected a 12-digit AWS account id').optional(),
  /** Role assumed to reach another account; it must carry the documented minimum policy. */
  roleArn: z
    .string()
    .regex(ROLE_ARN, "expected an IAM role ARN like 'arn:aws:iam::111122223333:role/name'")
    .optional(),
  /** Regions to discover in this account. */
  regions: z
    .array(z.string().regex(REGION, "expected an AWS region like 'eu-west-1'"))
    .min(1, 'expected at least one region'),
});

export const LabelFilterSchema = z.strictObject({
  /** When non-empty, only APIs carrying at least one of these labels are federated. */
  include: z.array(z.string().regex(LABEL, "expected a label 'key' or 'key=value'")).default([]),
  /** APIs carrying any of these labels are never federated (exclude wins over include). */
  exclude: z.array(z.string().regex(LABEL, "expected a label 'key' or 'key=value'")).default([]),
});

export const RateLimitSchema = z.strictObject({
  /** Sustained API Gateway management calls per second, per account-region (AWS allows about 10). */
  ratePerSecond: z.number().positive().max(100).default(10),
  /** Bucket size (AWS allows a burst of about 40). */
  burst: z.number().int().positive().max(200).default(40),
});

/** The agent's settings. One schema for the Lambda functions, the local runtime and the CDK app. */
export const AgentConfigSchema = z.strictObject({
  /** Identifies this agent to the control plane (`hello`, `ping`). */
  agentId: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of letters, digits, '_', '.', '-'")
    .default('apigw-federation'),
  /** Account-regions to discover. Empty means the function's own account and region. */
  sources: z
    .array(SourceSchema)
    .default([])
    .refine((s) => new Set(s.map((x) => x.name)).size === s.length, 'expected unique source names'),
  /** Federate stages attached to no usage plan (they get no plan). */
  acceptApiWithoutUsagePlan: z.boolean().default(false),
  labels: LabelFilterSchema.default({ include: [], exclude: [] }),
  /** EventBridge schedule of discovery. */
  schedule: z
    .string()
    .regex(SCHEDULE, "expected an EventBridge expression like 'rate(15 minutes)' or 'cron(0/15 * * * ? *)'")
    .default('rate(15 minutes)'),
  rateLimit: RateLimitSchema.default({ ratePerSecond: 10, burst: 40 }),
  /** Account-regions discovered at the same time. */
  concurrency: z.number().int().min(1).max(32).default(4),
  /** DynamoDB ledger table. */
  tableName: z.string().min(3).max(255).default('apigw-federation-ledger'),
  /** Secrets Manager secret holding the relay bearer token. */
  relayTokenSecretName: z.string().min(1).max(512).default('apigw-federation/relay-token'),
  /** Secrets Manager secret holding the HMAC key from which API key values are derived. */
  apiKeySecretName: z.string().min(1).max(512).default('apigw-federation/api-key-hmac'),
  /** Days outbox events are kept for `sync` replay. */
  outboxRetentionDays: z.number().int().min(1).max(365).default(7),
  /**
   * Opt-in lost-key sweeper (`{ "action": "sweep" }` on the subscriptions function): gives the
   * subscriptions role one permission beyond the documented policy, `apigateway:GET` on `/apikeys`
   * (`GetApiKeys` with a name query), so keys named for a subscription whose id the ledger lost
   * (a lost `CreateApiKey` answer, a failed or revoked subscription) can be found and deleted.
   * See docs/subscriptions.md, "Sweeping lost keys".
   */
  sweepLostKeys: z.boolean().default(false),
});

export type AgentConfig = z.output<typeof AgentConfigSchema>;
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
export type Source = z.output<typeof SourceSchema>;
export type LabelFilter = z.output<typeof LabelFilterSchema>;
export type RateLimit = z.output<typeof RateLimitSchema>;
