/**
 * The one source of truth for API Gateway permissions: the statements of the documented "Minimum AWS
 * permissions" policy (seed 000), verbatim, and how they are split between the agent's roles.
 *
 * - discovery gets the `apigateway:GET` statement (REST APIs, their stages and exports, usage plans);
 * - subscriptions gets the `apigateway:POST` and `apigateway:DELETE` statements (create a key, attach it
 *   to a usage plan, delete it);
 * - nothing else gets any `apigateway:` action (the relay forwards subscription commands by invoking the
 *   subscriptions function).
 *
 * Opt-in statements ({@link OPT_IN_STATEMENTS}) are permissions beyond the documented policy that a
 * configuration flag turns on (today one: `sweepLostKeys`, `GET /apikeys` for subscriptions). They are
 * never part of the documented statements or of {@link DOCUMENTED_POLICY}.
 *
 * Region: by default the statements keep the documented `*` region, so the union of the roles' grants is
 * exactly the documented policy (a test compares it with the seed's document). API Gateway management
 * ARNs carry no account id: a role's grant never reaches beyond its own account, and the actions and
 * paths are what make the policy minimal. A deployment may narrow the region to the regions it
 * discovers (`regions` option, CDK context `scopeApiGatewayRegions`); the paths and actions stay the same.
 */
import * as iam from 'aws-cdk-lib/aws-iam';

/** One statement of the documented policy, in the document's own shape. */
export interface DocumentedStatement {
  readonly Effect: 'Allow';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
}

/** Placeholder for the region in the documented resources. */
const DOCUMENTED_REGION = '*';
const arn = (path: string) => `arn:aws:apigateway:${DOCUMENTED_REGION}::${path}`;

/** The documented statements, in the document's order. */
export const DOCUMENTED_STATEMENTS = {
  /** Discovery: GetRestApis (tags included), GetRestApi, GetStages, GetExport, GetUsagePlans. */
  get: {
    Effect: 'Allow',
    Action: ['apigateway:GET'],
    Resource: [arn('/restapis'), arn('/restapis/*'), arn('/restapis/*/stages/*'), arn('/usageplans')],
  },
  /** Subscriptions: CreateApiKey, CreateUsagePlanKey. */
  post: {
    Effect: 'Allow',
    Action: ['apigateway:POST'],
    Resource: [arn('/apikeys'), arn('/usageplans/*/keys')],
  },
  /** Subscriptions: DeleteApiKey. */
  delete: {
    Effect: 'Allow',
    Action: ['apigateway:DELETE'],
    Resource: [arn('/apikeys/*')],
  },
} as const satisfies Record<string, DocumentedStatement>;

/** The documented policy document, verbatim (for member-account roles and the union test). */
export const DOCUMENTED_POLICY = {
  Version: '2012-10-17',
  Statement: [DOCUMENTED_STATEMENTS.get, DOCUMENTED_STATEMENTS.post, DOCUMENTED_STATEMENTS.delete],
} as const;

/**
 * Opt-in statements: permissions BEYOND the documented policy, granted only when the agent's
 * configuration turns the feature on. They are kept apart from {@link DOCUMENTED_STATEMENTS} (which
 * stays verbatim) so that a default deployment grants exactly the documented policy.
 */
export const OPT_IN_STATEMENTS = {
  /**
   * `sweepLostKeys: true` (subscriptions only): `GetApiKeys` with a name query, so the lost-key sweeper
   * can find keys named `fed-<subscriptionId>` whose ids the ledger lost and delete them (with the
   * documented `DELETE /apikeys/*`). See docs/subscriptions.md, "Sweeping lost keys".
   */
  sweepLostKeys: {
    Effect: 'Allow',
    Action: ['apigateway:GET'],
    Resource: [arn('/apikeys')],
  },
} as const satisfies Record<string, DocumentedStatement>;

export type OptIn = keyof typeof OPT_IN_STATEMENTS;

/** The capability (role) each opt-in statement is granted to. */
export const OPT_IN_CAPABILITY = {
  sweepLostKeys: 'subscriptions',
} as const satisfies Record<OptIn, string>;

/** The agent capabilities that call API Gateway, and the documented statements each one gets. */
export const API_GATEWAY_SPLIT = {
  discovery: ['get'],
  subscriptions: ['post', 'delete'],
} as const satisfies Record<string, readonly (keyof typeof DOCUMENTED_STATEMENTS)[]>;

export type ApiGatewayCapability = keyof typeof API_GATEWAY_SPLIT;

export interface DocumentedStatementOptions {
  /**
   * Regions the resources are narrowed to (one resource per documented resource and region).
   * @default - the documented `*` region
   */
  readonly regions?: readonly string[];
  /**
   * Partition of the ARNs: in a stack, `Stack.of(scope).partition` (a literal when the region is known,
   * `AWS::Partition` otherwise). @default 'aws' (the documented document, verbatim)
   */
  readonly partition?: string;
}

function withRegions(
  resources: readonly string[],
  regions: readonly string[] | undefined,
  partition = 'aws',
): string[] {
  const prefix = `arn:aws:apigateway:${DOCUMENTED_REGION}::`;
  const targets = regions && regions.length > 0 ? [...new Set(regions)] : [DOCUMENTED_REGION];
  return targets.flatMap((region) =>
    resources.map((resource) => `arn:${partition}:apigateway:${region}::${resource.slice(prefix.length)}`),
  );
}

/** The documented statements of one capability, as JSON (the shape IAM and the test fixture use). */
export function documentedStatementsJson(
  capability: ApiGatewayCapability,
  options: DocumentedStatementOptions = {},
): DocumentedStatement[] {
  return API_GATEWAY_SPLIT[capability].map((key) => {
    const statement = DOCUMENTED_STATEMENTS[key];
    return {
      Effect: statement.Effect,
      Action: [...statement.Action],
      Resource: withRegions(statement.Resource, options.regions, options.partition),
    };
  });
}

/** One opt-in statement as JSON, narrowed like the documented ones when `regions` is given. */
export function optInStatementJson(
  optIn: OptIn,
  options: DocumentedStatementOptions = {},
): DocumentedStatement {
  const statement = OPT_IN_STATEMENTS[optIn];
  return {
    Effect: statement.Effect,
    Action: [...statement.Action],
    Resource: withRegions(statement.Resource, options.regions, options.partition),
  };
}

/** One opt-in statement as a CDK policy statement. */
export function optInStatement(optIn: OptIn, options: DocumentedStatementOptions = {}): iam.PolicyStatement {
  const statement = optInStatementJson(optIn, options);
  return new iam.PolicyStatement({
    effect: iam.Effect.ALLOW,
    actions: [...statement.Action],
    resources: [...statement.Resource],
  });
}

/** The documented statements of one capability, as CDK policy statements for its role. */
export function documentedStatements(
  capability: ApiGatewayCapability,
  options: DocumentedStatementOptions = {},
): iam.PolicyStatement[] {
  return documentedStatementsJson(capability, options).map(
    (statement) =>
      new iam.PolicyStatement({
        effect: iam.Effect.ALLOW,
        actions: [...statement.Action],
        resources: [...statement.Resource],
      }),
  );
}

/**
 * The policy document of one capability's API Gateway grant, as JSON: what the emulator's fidelity
 * proxy enforces (`emu.proxy.setPolicy(apiGatewayPolicyJson('discovery'))`) so a test suite runs behind
 * exactly the role's grant. The infra tests prove the synthesized roles carry exactly these statements.
 */
export function apiGatewayPolicyJson(
  capability: ApiGatewayCapability,
  options: DocumentedStatementOptions & {
    /** Opt-in statements of this capability appended after the documented ones. @default - none */
    readonly optIns?: readonly OptIn[];
  } = {},
): { Version: '2012-10-17'; Statement: { Effect: 'Allow'; Action: string[]; Resource: string[] }[] } {
  const optIns = [...new Set(options.optIns ?? [])].map((optIn) => {
    if (OPT_IN_CAPABILITY[optIn] !== capability) {
      throw new Error(`Opt-in ${optIn} belongs to ${OPT_IN_CAPABILITY[optIn]}, not to ${capability}`);
    }
    return optInStatementJson(optIn, options);
  });
  return {
    Version: '2012-10-17',
    Statement: [...documentedStatementsJson(capability, options), ...optIns].map((s) => ({
      Effect: s.Effect,
      Action: [...s.Action],
      Resource: [...s.Resource],
    })),
  };
}

/**
 * The whole documented policy as a CDK policy document (member-account roles carry all of it), its ARNs
 * in `partition`.
 */
export function documentedPolicyDocument(
  options: Pick<DocumentedStatementOptions, 'partition'> = {},
): iam.PolicyDocument {
  return iam.PolicyDocument.fromJson({
    Version: DOCUMENTED_POLICY.Version,
    Statement: DOCUMENTED_POLICY.Statement.map((statement) => ({
      Effect: statement.Effect,
      Action: [...statement.Action],
      Resource: withRegions(statement.Resource, undefined, options.partition),
    })),
  });
}
