import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as authorizers from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as integrations from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { COMMAND_ACTIONS } from '../../layers/federation-core/src/protocol/protocol.js';
import { grantInvokeUnqualified, grantLedger } from '../iam/grants.js';
import { acknowledgeResourceWildcard } from '../iam/nag.js';
import { FederationFunction } from './federation-function.js';

/**
 * The commands the control plane sends (`$request.body.action`), each routed to relay-command: the
 * protocol's command list, so a new command gets its route (`$default` is the API's default route).
 */
export const RELAY_COMMAND_ROUTES = COMMAND_ACTIONS;

/** Where the control plane puts its bearer token on `$connect`. */
export const RELAY_IDENTITY_SOURCE = 'route.request.header.Authorization';

export interface RelayProps {
  readonly coreLayer: lambda.ILayerVersion;
  readonly table: dynamodb.ITable;
  /** The bearer token the authorizer compares with. */
  readonly relayToken: secretsmanager.ISecret;
  /** Invoked asynchronously by `discover`. */
  readonly discovery: FederationFunction;
  /** Invoked by `subscribe` / `unsubscribe`. */
  readonly subscriptions: FederationFunction;
  /**
   * Functions outside the relay that post to connections (`@connections`): they get
   * `execute-api:ManageConnections` on this stage and `FED_CONNECTIONS_URL`.
   */
  readonly publishers?: readonly FederationFunction[];
  /** Environment shared by the agent's functions. */
  readonly environment: Record<string, string>;
  /** @default 'live' */
  readonly stageName?: string;
  /**
   * Access logs of the stage. API Gateway refuses them on a WebSocket stage unless the account has a
   * CloudWatch Logs role in its API Gateway settings, which a fresh account has not. @default false
   */
  readonly accessLogs?: boolean;
  /** Stage throttling. @default - rate 50/s, burst 100 */
  readonly throttle?: apigwv2.ThrottleSettings;
}

/** relay-command's timeout: each share of a `sync` sends for this long minus a 30 s hand-off margin. */
export const RELAY_COMMAND_TIMEOUT = Duration.minutes(5);

/**
 * The relay: a WebSocket API the control plane connects to with `Authorization: Bearer <token>`.
 * `$connect` is guarded by a REQUEST authorizer (relay-authorizer, which alone may read the token);
 * `$connect`/`$disconnect` go to relay-connection; every command and `$default` go to relay-command, which
 * invokes discovery (asynchronously) and subscriptions and never touches API Gateway itself. Functions
 * that post to connections get `execute-api:ManageConnections` on this API's stage only.
 */
export class Relay extends Construct {
  readonly api: apigwv2.WebSocketApi;
  readonly stage: apigwv2.WebSocketStage;
  readonly authorizer: FederationFunction;
  readonly connection: FederationFunction;
  readonly command: FederationFunction;
  /** The stage's access log group, when `accessLogs` is on. */
  readonly accessLogs?: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RelayProps) {
    super(scope, id);
    const stageName = props.stageName ?? 'live';

    this.authorizer = new FederationFunction(this, 'Authorizer', {
      name: 'relay-authorizer',
      description: 'apigw-federation: $connect authorizer (bearer token vs Secrets Manager)',
      coreLayer: props.coreLayer,
      environment: props.environment,
    });
    props.relayToken.grantRead(this.authorizer.role);

    this.connection = new FederationFunction(this, 'Connection', {
      name: 'relay-connection',
      description: 'apigw-federation: $connect/$disconnect (connection records, hello)',
      coreLayer: props.coreLayer,
      environment: props.environment,
    });
    grantLedger(this.connection.role, props.table);
    // `$connect` cannot post to its own connection, so relay-connection invokes itself asynchronously to
    // send the `hello`. A separate policy: the function's default policy is a dependency of the function,
    // and naming the function's ARN there would be a cycle.
    new iam.Policy(this, 'ConnectionSelfInvoke', {
      roles: [this.connection.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: [this.connection.function.functionArn],
        }),
      ],
    });

    this.command = new FederationFunction(this, 'Command', {
      name: 'relay-command',
      description:
        'apigw-federation: relay commands (discover, sync, subscribe, unsubscribe, ping, $default)',
      coreLayer: props.coreLayer,
      // Longer than what it waits for (a synchronous subscriptions invocation), and a multi-minute budget
      // per share of a `sync`; a share that fails is not retried (it would send duplicates).
      timeout: RELAY_COMMAND_TIMEOUT,
      retryAttempts: 0,
      environment: {
        ...props.environment,
        FED_DISCOVERY_FUNCTION: props.discovery.function.functionName,
        FED_SUBSCRIPTIONS_FUNCTION: props.subscriptions.function.functionName,
      },
    });
    grantLedger(this.command.role, props.table);
    grantInvokeUnqualified(this.command.role, props.discovery.function);
    grantInvokeUnqualified(this.command.role, props.subscriptions.function);
    // A `sync` continues in asynchronous invocations of relay-command itself (own policy: no cycle).
    new iam.Policy(this, 'CommandSelfInvoke', {
      roles: [this.command.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: [this.command.function.functionArn],
        }),
      ],
    });

    const authorizer = new authorizers.WebSocketLambdaAuthorizer('BearerToken', this.authorizer.function, {
      identitySource: [RELAY_IDENTITY_SOURCE],
    });
    const connectionIntegration = new integrations.WebSocketLambdaIntegration(
      'ConnectionIntegration',
      this.connection.function,
    );
    const commandIntegration = new integrations.WebSocketLambdaIntegration(
      'CommandIntegration',
      this.command.function,
    );

    this.api = new apigwv2.WebSocketApi(this, 'Api', {
      // Unique per deployment (a stack name is unique per account and region); not the construct id.
      apiName: `${Stack.of(this).stackName}-relay`,
      description: 'apigw-federation relay: the control plane connects here',
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: { integration: connectionIntegration, authorizer },
      disconnectRouteOptions: { integration: connectionIntegration },
      defaultRouteOptions: { integration: commandIntegration },
    });
    for (const route of RELAY_COMMAND_ROUTES) {
      this.api.addRoute(route, { integration: commandIntegration });
    }

    if (props.accessLogs) {
      this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
    }
    this.stage = new apigwv2.WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName,
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
      accessLogSettings: this.accessLogs
        ? {
            destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
            format: AccessLogFormat.custom(
              JSON.stringify({
                requestId: '$context.requestId',
                connectionId: '$context.connectionId',
                eventType: '$context.eventType',
                routeKey: '$context.routeKey',
                status: '$context.status',
                authorizerError: '$context.authorizer.error',
                integrationError: '$context.integration.error',
                requestTime: '$context.requestTimeEpoch',
                ip: '$context.identity.sourceIp',
              }),
            ),
          }
        : undefined,
    });
    if (!this.accessLogs) {
      Validations.of(this.stage).acknowledge({
        id: 'AwsSolutions-APIG1',
        reason:
          'Off by default so that the stack deploys in an account without the API Gateway CloudWatch Logs role; ' +
          'the functions log every connection and command. Opt in with -c relayAccessLogs=true or ' +
          '-c apiGatewayCloudWatchRole=true (docs/deploy.md).',
      });
    }

    const connectionsUrl = this.stage.callbackUrl;
    for (const fn of [this.connection, this.command, ...(props.publishers ?? [])]) {
      this.grantManageConnections(fn.role);
      fn.addEnvironment('FED_CONNECTIONS_URL', connectionsUrl);
    }

    // WebSocket APIs accept an authorizer on $connect only; every other route runs on a connection that
    // passed it (API Gateway has no per-message authorization for WebSocket routes).
    for (const route of this.api.node.children) {
      if (route instanceof apigwv2.WebSocketRoute && route.routeKey !== '$connect') {
        Validations.of(route).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            'WebSocket routes other than $connect cannot have an authorizer: they run on a connection that passed ' +
            'the $connect REQUEST authorizer (bearer token).',
        });
      }
    }
  }

  /** `execute-api:ManageConnections` on `@connections/*` of this API's stage only. */
  grantManageConnections(grantee: iam.IGrantable): iam.Grant {
    const connectionsArn = Stack.of(this).formatArn({
      service: 'execute-api',
      resource: this.api.apiId,
      resourceName: `${this.stage.stageName}/*/@connections/*`,
    });
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:ManageConnections'],
      resourceArns: [connectionsArn],
    });
    if (grantee instanceof iam.Role) {
      acknowledgeResourceWildcard(
        grantee,
        connectionsArn,
        "Connection ids are only known at run time: ManageConnections on this API's stage '@connections/*' only.",
      );
    }
    return grant;
  }

  /** The wss:// URL the control plane connects to. */
  get url(): string {
    return this.stage.url;
  }
}
