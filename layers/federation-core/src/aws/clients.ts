import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { OrganizationsClient } from '@aws-sdk/client-organizations';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, Pluggable } from '@aws-sdk/types';
import { doesIdentityRequireRefresh, isIdentityExpired, memoizeIdentityProvider } from '@smithy/core';

/** Where an API Gateway call goes: an account-region, reached through `roleArn` when set. */
export interface AwsTarget {
  readonly region: string;
  readonly accountId?: string;
  readonly roleArn?: string;
}

export interface AwsClientFactoryOptions {
  /** The region of the agent itself (ledger, secrets, functions). */
  readonly region: string;
  /** Endpoint override for every client (an emulator); unset on AWS. */
  readonly endpoint?: string;
  /** Base credentials; the SDK's default chain when unset. */
  readonly credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /**
   * SDK attempts for API Gateway calls. Default 1: the core's rate limiter and retry policy sit on top
   * and must see every throttle, or they cannot adapt.
   */
  readonly apiGatewayMaxAttempts?: number;
  /**
   * Session policy (IAM policy JSON) passed to `sts:AssumeRole`: a member account's role carries the
   * whole documented policy, and the session policy narrows each function's session to its own part
   * of it (discovery GET, subscriptions POST and DELETE), so the split holds across accounts too.
   * One policy for every role, or one per role ARN (`sessionPoliciesByRole`: each limited to the
   * regions of the sources using that role).
   */
  readonly assumeRoleSessionPolicy?: string | Readonly<Record<string, string>>;
  /** Session name for `sts:AssumeRole`. */
  readonly roleSessionName?: string;
  /**
   * Middleware plugins of the STS client that assumes the roles (the SDK's `clientPlugins` of
   * `fromTemporaryCredentials`; the SDK applies them again at each refresh, so a named middleware
   * should be added with `override: true`). Tests observe the `AssumeRole` requests with it.
   */
  readonly assumeRolePlugins?: readonly Pluggable<object, object>[];
}

/** Attempts of a `PostToConnection` (the SDK's standard retry mode), the first included. */
export const CONNECTIONS_MAX_ATTEMPTS = 4;

/**
 * Hands out AWS clients, created once per (account, region, role) and reused for the life of the
 * container. Sources with a `roleArn` get credentials from `sts:AssumeRole` (the SDK's
 * `fromTemporaryCredentials`), cached until 5 minutes before expiry.
 */
export class AwsClientFactory {
  private readonly apiGateways = new Map<string, APIGatewayClient>();
  private readonly roleCredentials = new Map<string, AwsCredentialIdentityProvider>();
  private readonly managementClients = new Map<string, ApiGatewayManagementApiClient>();
  private documentClient?: DynamoDBDocumentClient;
  private secretsClient?: SecretsManagerClient;
  private lambdaClient?: LambdaClient;
  private stsClient?: STSClient;
  private sqsClient?: SQSClient;
  private readonly organizationsClients = new Map<string, OrganizationsClient>();

  constructor(private readonly options: AwsClientFactoryOptions) {}

  get region(): string {
    return this.options.region;
  }

  get endpoint(): string | undefined {
    return this.options.endpoint;
  }

  /** API Gateway management client for an account-region. */
  apiGateway(target: AwsTarget): APIGatewayClient {
    const key = `${target.roleArn ?? target.accountId ?? 'self'}|${target.region}`;
    let client = this.apiGateways.get(key);
    if (!client) {
      client = new APIGatewayClient({
        region: target.region,
        endpoint: this.options.endpoint,
        credentials: target.roleArn ? this.assumedRole(target.roleArn) : this.options.credentials,
        maxAttempts: this.options.apiGatewayMaxAttempts ?? 1,
      });
      this.apiGateways.set(key, client);
    }
    return client;
  }

  /** DynamoDB document client for the ledger (SDK standard retries: conditional writes are idempotent here). */
  dynamoDocument(): DynamoDBDocumentClient {
    this.documentClient ??= DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: this.options.region,
        endpoint: this.options.endpoint,
        credentials: this.options.credentials,
      }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
    return this.documentClient;
  }

  secretsManager(): SecretsManagerClient {
    this.secretsClient ??= new SecretsManagerClient({
      region: this.options.region,
      endpoint: this.options.endpoint,
      credentials: this.options.credentials,
    });
    return this.secretsClient;
  }

  lambda(): LambdaClient {
    this.lambdaClient ??= new LambdaClient({
      region: this.options.region,
      endpoint: this.options.endpoint,
      credentials: this.options.credentials,
    });
    return this.lambdaClient;
  }

  sts(): STSClient {
    this.stsClient ??= new STSClient({
      region: this.options.region,
      endpoint: this.options.endpoint,
      credentials: this.options.credentials,
    });
    return this.stsClient;
  }

  sqs(): SQSClient {
    this.sqsClient ??= new SQSClient({
      region: this.options.region,
      endpoint: this.options.endpoint,
      credentials: this.options.credentials,
    });
    return this.sqsClient;
  }

  /**
   * AWS Organizations client (organisation sources): the function's own credentials, or `roleArn` in
   * the management or delegated administrator account. Organizations answers in us-east-1 (aws).
   */
  organizations(roleArn?: string): OrganizationsClient {
    const key = roleArn ?? 'self';
    let client = this.organizationsClients.get(key);
    if (!client) {
      client = new OrganizationsClient({
        region: this.options.endpoint ? this.options.region : 'us-east-1',
        endpoint: this.options.endpoint,
        credentials: roleArn ? this.assumedRole(roleArn) : this.options.credentials,
      });
      this.organizationsClients.set(key, client);
    }
    return client;
  }

  /**
   * `@connections` client for a relay stage URL (https://{api}.execute-api.{region}.amazonaws.com/{stage}).
   * The SDK's standard retries (`CONNECTIONS_MAX_ATTEMPTS` attempts, backoff with jitter) are the only
   * retries of a post; a `GoneException` is not retried.
   */
  apiGatewayManagement(connectionsUrl: string): ApiGatewayManagementApiClient {
    let client = this.managementClients.get(connectionsUrl);
    if (!client) {
      client = new ApiGatewayManagementApiClient({
        region: this.options.region,
        endpoint: connectionsUrl,
        credentials: this.options.credentials,
        maxAttempts: CONNECTIONS_MAX_ATTEMPTS,
        retryMode: 'standard',
      });
      this.managementClients.set(connectionsUrl, client);
    }
    return client;
  }

  private sessionPolicy(roleArn: string): string | undefined {
    const policy = this.options.assumeRoleSessionPolicy;
    if (typeof policy === 'string' || policy === undefined) return policy;
    // A role of an organisation source: the policy of its role name (`role/<name>`).
    return policy[roleArn] ?? policy[`role/${roleArn.replace(/^arn:[^:]+:iam::\d{12}:role\//, '')}`];
  }

  /**
   * The credential provider for `roleArn`: the SDK's `fromTemporaryCredentials` (its own STS client,
   * with this factory's region, endpoint and base credentials), memoised the way the SDK's clients
   * memoise their credentials (refreshed 5 minutes before expiry, concurrent calls share one request)
   * and shared by the clients of every region of that role, so a multi-region source assumes its role once.
   */
  private assumedRole(roleArn: string): AwsCredentialIdentityProvider {
    let provider = this.roleCredentials.get(roleArn);
    if (!provider) {
      const temporary = fromTemporaryCredentials({
        params: {
          RoleArn: roleArn,
          RoleSessionName: this.options.roleSessionName ?? 'apigw-federation',
          DurationSeconds: 3600,
          Policy: this.sessionPolicy(roleArn),
        },
        masterCredentials: this.options.credentials,
        clientConfig: { region: this.options.region, endpoint: this.options.endpoint },
        clientPlugins: this.options.assumeRolePlugins ? [...this.options.assumeRolePlugins] : undefined,
      });
      // (memoizeIdentityProvider returns undefined only for an undefined provider)
      provider =
        memoizeIdentityProvider(temporary, isIdentityExpired, doesIdentityRequireRefresh) ?? temporary;
      this.roleCredentials.set(roleArn, provider);
    }
    return provider;
  }
}
