import { z } from 'zod';
import { scheduleProblem } from './schedule.js';

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
const ACCOUNT_ID = /^\d{12}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** A label is `key` or `key=value`, taken from REST API tags. */
const LABEL = /^[\p{L}\p{N}\s_.:/+\-@]{1,128}(=[\p{L}\p{N}\s_.:/+\-@]{0,256})?$/u;

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

/** An IAM role name (the part after `role/`, paths allowed). */
const ROLE_NAME = /^[\w+=,.@/-]{1,512}$/;
/** An AWS Organizations organizational unit (`ou-...`) or root (`r-...`) id. */
const PARENT_ID = /^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/;

/**
 * An AWS Organizations scope (opt-in, outside the documented API Gateway policy): the accounts under
 * these OUs (nested OUs included), listed at the start of each run (`organizations:ListChildren`,
 * `organizations:ListAccountsForParent`) from the management or a delegated administrator account, each
 * reached through the role `roleName`, in `regions`. See docs/deploy.md, "Organisation sources".
 */
export const OrganizationScopeSchema = z.strictObject({
  /** Organizational units (or the root, `r-...`) whose accounts are discovered, nested OUs included. */
  ouIds: z
    .array(z.string().regex(PARENT_ID, "expected an OU id like 'ou-ab12-cdef3456' or a root id 'r-ab12'"))
    .min(1, 'expected at least one OU id'),
  /** The role present in each account (carrying the documented policy), e.g. `apigw-federation-member`. */
  roleName: z.string().regex(ROLE_NAME, "expected an IAM role name like 'apigw-federation-member'"),
  /** Regions discovered in every account. */
  regions: z
    .array(z.string().regex(REGION, "expected an AWS region like 'eu-west-1'"))
    .min(1, 'expected at least one region'),
  /**
   * Role to assume for the listing, in the management or delegated administrator account; default the
   * function's own credentials (the agent deployed there).
   */
  listingRoleArn: z
    .string()
    .regex(ROLE_ARN, "expected an IAM role ARN like 'arn:aws:iam::111122223333:role/name'")
    .optional(),
  /** Accounts never discovered (the management account, sandboxes). */
  excludeAccountIds: z.array(z.string().regex(ACCOUNT_ID, 'expected a 12-digit AWS account id')).default([]),
});

/** `{ name, organization }`: a source that is an organisation scope; its `regions` are the scope's. */
export const OrganizationSourceSchema = z
  .strictObject({ name: SourceNameSchema, organization: OrganizationScopeSchema })
  .transform(
    (
      s,
    ): {
      name: string;
      regions: string[];
      accountId?: string;
      roleArn?: string;
      organization: z.output<typeof OrganizationScopeSchema>;
    } => ({ name: s.name, regions: s.organization.regions, organization: s.organization }),
  );

export const LabelFilterSchema = z.strictObject({
  /** When non-empty, only APIs carrying at least one of these labels are federated. */
  include: z.array(z.string().regex(LABEL, "expected a label 'key' or 'key=value'")).default([]),
  /** APIs carrying any of these labels are never federated (exclude wins over include). */
  exclude: z.array(z.string().regex(LABEL, "expected a label 'key' or 'key=value'")).default([]),
});

/**
 * The agent's share of API Gateway's management API budget per account-region. AWS allows about
 * 10 requests/s with a burst of 40, per account and shared with everything else the customer runs
 * there (CloudFormation, Terraform, consoles, CI): the default takes half, so the customer keeps the
 * other half. Raise it in an account where nothing else calls the management API.
 */
export const RateLimitSchema = z.strictObject({
  /** Sustained API Gateway management calls per second, per account-region (AWS allows about 10). */
  ratePerSecond: z.number().positive().max(100).default(5),
  /** Bucket size (AWS allows a burst of about 40). */
  burst: z.number().int().positive().max(200).default(20),
});

/** Discovery schedule without change events, and the reconciliation schedule with them. */
export const DEFAULT_SCHEDULE = 'rate(15 minutes)';
export const DEFAULT_RECONCILIATION_SCHEDULE = 'rate(6 hours)';

/** Options of change events (the object form of `changeEvents`). See docs/change-events.md. */
export const ChangeEventsOptionsSchema = z.strictObject({
  /** Turns change events on (the object form alone means on). */
  enabled: z.boolean().default(true),
  /**
   * Seconds the queue gathers events before one targeted run handles them all (the event source
   * mapping's batching window): a pipeline's burst of calls on one API becomes one run.
   */
  batchWindowSeconds: z.number().int().min(0).max(300).default(5),
  /** Deliveries of an event that could not be processed (throttled, AWS error, lease busy) before the dead-letter queue. */
  maxReceiveCount: z.number().int().min(1).max(20).default(5),
  /**
   * Accounts whose API Gateway events may be forwarded to the agent's event bus (the bus policy);
   * the accounts of the sources' `accountId`/`roleArn` are always allowed.
   */
  forwardingAccounts: z.array(z.string().regex(ACCOUNT_ID, 'expected a 12-digit AWS account id')).default([]),
});

const CHANGE_EVENTS_OFF: ChangeEventsOptions = {
  enabled: false,
  batchWindowSeconds: 5,
  maxReceiveCount: 5,
  forwardingAccounts: [],
};

/** `changeEvents`: `true`/`false`, or an object of options (always an object once parsed). */
export const ChangeEventsSchema = z
  .union([z.boolean().transform((enabled) => ({ ...CHANGE_EVENTS_OFF, enabled })), ChangeEventsOptionsSchema])
  .default(CHANGE_EVENTS_OFF);

/** Options of fan-out (the object form of `fanOut`). See docs/deploy.md, "Fan-out". */
export const FanOutOptionsSchema = z.strictObject({
  /** On or off; `auto` (default): on with an organisation source or more than 8 account-regions. */
  enabled: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** Account-regions discovered at the same time (the event source mapping's maximum concurrency, 2–1000). */
  maxConcurrency: z.number().int().min(2).max(1000).default(10),
  /** Deliveries of a unit that failed (AWS errors after retries) before the dead-letter queue. */
  maxReceiveCount: z.number().int().min(1).max(20).default(3),
  /** Minutes after which a run is completed as partial with whatever units ended. */
  deadlineMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(60),
  /**
   * Seconds an invocation that started a run (`{}`, `{ "full": true }`, not the schedule) waits for it to
   * complete before answering that it continues (with its run id).
   */
  waitSeconds: z.number().int().min(0).max(600).default(20),
});

const FAN_OUT_AUTO: FanOutOptions = {
  enabled: 'auto',
  maxConcurrency: 10,
  maxReceiveCount: 3,
  deadlineMinutes: 60,
  waitSeconds: 20,
};

/** `fanOut`: `true`/`false`/`"auto"`, or an object of options (always an object once parsed). */
export const FanOutSchema = z
  .union([
    z.union([z.boolean(), z.literal('auto')]).transform((enabled) => ({ ...FAN_OUT_AUTO, enabled })),
    FanOutOptionsSchema,
  ])
  .default(FAN_OUT_AUTO);

/** Default share of the management API budget (half of AWS's 10 requests/s, burst 40). */
export const DEFAULT_RATE_LIMIT = { ratePerSecond: 5, burst: 20 } as const;

/**
 * The key bucket: `CreateApiKey` and `DeleteApiKey` are limited by AWS to 5 requests/s per account, on
 * top of the account's budget; both share this bucket, which cannot exceed AWS's limit.
 */
export const ApiKeyRateLimitSchema = z.strictObject({
  ratePerSecond: z
    .number()
    .positive()
    .max(5, 'AWS allows CreateApiKey and DeleteApiKey 5 requests/s')
    .default(2),
  burst: z
    .number()
    .int()
    .positive()
    .max(5, 'AWS allows CreateApiKey and DeleteApiKey 5 requests/s')
    .default(4),
});

/** Default key bucket: 2 requests/s, burst 4 (AWS: 5 requests/s). */
export const DEFAULT_API_KEY_RATE_LIMIT = { ratePerSecond: 2, burst: 4 } as const;

/** The agent's settings. One schema for the Lambda functions, the local runtime and the CDK app. */
const AgentConfigObjectSchema = z.strictObject({
  /** Identifies this agent to the control plane (`hello`, `ping`). */
  agentId: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 characters of letters, digits, '_', '.', '-'")
    .default('apigw-federation'),
  /**
   * Account-regions to discover. Empty means the function's own account and region. A source may be
   * an organisation scope `{ name, organization: { ouIds, roleName, regions } }` (opt-in).
   */
  sources: z
    .array(z.union([SourceSchema, OrganizationSourceSchema]))
    .default([])
    .refine((s) => new Set(s.map((x) => x.name)).size === s.length, 'expected unique source names'),
  /** Federate stages attached to no usage plan (they get no plan). */
  acceptApiWithoutUsagePlan: z.boolean().default(false),
  labels: LabelFilterSchema.default({ include: [], exclude: [] }),
  /**
   * EventBridge schedule of discovery: `rate(15 minutes)` by default, `rate(6 hours)` (a
   * reconciliation run, since event delivery is best effort) when `changeEvents` is on.
   */
  schedule: z
    .string()
    .superRefine((expression, ctx) => {
      const problem = scheduleProblem(expression);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: expression });
    })
    .optional(),
  /**
   * Opt-in change events: API Gateway's management calls, recorded by CloudTrail and delivered by
   * EventBridge, start a targeted discovery of the REST API (or usage plans) they changed, within the
   * documented policy. Needs a CloudTrail trail with management events. See docs/change-events.md.
   */
  changeEvents: ChangeEventsSchema,
  rateLimit: RateLimitSchema.default(DEFAULT_RATE_LIMIT),
  /** The key bucket of `CreateApiKey` / `DeleteApiKey` (subscriptions, sweeper), per account-region. */
  apiKeyRateLimit: ApiKeyRateLimitSchema.default(DEFAULT_API_KEY_RATE_LIMIT),
  /**
   * Fan-out: a run becomes one SQS message per account-region, consumed by the discovery function
   * (event source mapping with a maximum concurrency, redrive to a dead-letter queue). Default: on when
   * a source is an organisation scope or there are more than 8 account-regions. See docs/architecture.md.
   */
  fanOut: FanOutSchema,
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

export const AgentConfigSchema = AgentConfigObjectSchema.transform((config) => ({
  ...config,
  schedule:
    config.schedule ?? (config.changeEvents.enabled ? DEFAULT_RECONCILIATION_SCHEDULE : DEFAULT_SCHEDULE),
}));

export type AgentConfig = z.output<typeof AgentConfigSchema>;
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
export type Source = z.output<typeof SourceSchema> & { readonly organization?: OrganizationScope };
export type OrganizationScope = z.output<typeof OrganizationScopeSchema>;
export type FanOutOptions = z.output<typeof FanOutOptionsSchema>;
export type ChangeEventsOptions = z.output<typeof ChangeEventsOptionsSchema>;
export type LabelFilter = z.output<typeof LabelFilterSchema>;
export type RateLimit = z.output<typeof RateLimitSchema>;
export type ApiKeyRateLimit = z.output<typeof ApiKeyRateLimitSchema>;
