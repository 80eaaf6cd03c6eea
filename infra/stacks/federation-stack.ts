import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { sessionPoliciesByRole } from '../../layers/federation-core/src/aws/session-policy.js';
import { fanOutEnabled } from '../../layers/federation-core/src/config/load.js';
import type { AgentConfig } from '../../layers/federation-core/src/config/schema.js';
import { ChangeEvents } from '../constructs/change-events.js';
import { CONFIG_FILE_PATH, ConfigLayer } from '../constructs/config-layer.js';
import { CoreLayer } from '../constructs/core-layer.js';
import { Discovery } from '../constructs/discovery.js';
import { FanOut } from '../constructs/fan-out.js';
import { Observability } from '../constructs/observability.js';
import { Relay } from '../constructs/relay.js';
import { Secrets } from '../constructs/secrets.js';
import { Subscriptions } from '../constructs/subscriptions.js';
import { apiGatewayPolicyJson } from '../iam/documented-policy.js';
import {
  acknowledgeOrganizationRoles,
  grantOrganizationListing,
  organizationRoleArns,
} from '../iam/organization-access.js';

export interface FederationStackProps extends StackProps {
  /** The validated agent settings (sources, schedule, labels, ...). */
  readonly config: AgentConfig;
  /** The ledger (from the stateful stack). */
  readonly table: dynamodb.ITable;
  /** The API-key HMAC secret (from the stateful stack). */
  readonly apiKeySecret: secretsmanager.ISecret;
  /** Its fixed name, which the subscriptions function reads it by. */
  readonly apiKeySecretName: string;
  /** Version reported to the control plane (`hello`, `ping`). */
  readonly version: string;
  /**
   * Narrow the documented API Gateway resources to the regions discovered (the sources' regions, or
   * the stack's region when no source is configured). @default false (the documented `*` region)
   */
  readonly scopeApiGatewayRegions?: boolean;
  /** @default 'live' */
  readonly relayStageName?: string;
  /** SNS topic the alarms notify. @default - alarms without actions */
  readonly alarmTopicArn?: string;
  /**
   * Access logs of the relay's stage: needs the account's API Gateway CloudWatch Logs role (a fresh
   * account has none; `ApiGatewayAccountStack` sets one). @default false
   */
  readonly relayAccessLogs?: boolean;
}

/**
 * The agent: core layer, secrets, discovery, subscriptions, relay and observability. Composes the
 * capability constructs; the configuration reaches the functions as a file in a layer of its own
 * (`FED_CONFIG_FILE`, see `ConfigLayer`), the generated resource names as environment variables.
 */
export class FederationStack extends Stack {
  readonly coreLayer: CoreLayer;
  readonly configLayer: ConfigLayer;
  readonly secrets: Secrets;
  readonly discovery: Discovery;
  readonly subscriptions: Subscriptions;
  readonly relay: Relay;
  readonly observability: Observability;
  /** With `changeEvents` on: the rule, queue and dead-letter queue of change events. */
  readonly changeEvents?: ChangeEvents;
  /** With fan-out on: the queue of account-region units and its dead-letter queue. */
  readonly fanOut?: FanOut;

  constructor(scope: Construct, id: string, props: FederationStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.coreLayer = new CoreLayer(this, 'Core');
    this.configLayer = new ConfigLayer(this, 'Config', { config });
    this.secrets = new Secrets(this, 'Secrets');
    // Each member-account session policy within STS's limit (fails synth with the sources' regions).
    checkSessionPolicies(config);

    const environment: Record<string, string> = {
      FED_CONFIG_FILE: CONFIG_FILE_PATH,
      FED_TABLE_NAME: props.table.tableName,
      FED_RELAY_TOKEN_SECRET: this.secrets.relayToken.secretArn,
      // The fixed name: known before the stateful stack exists, and the same after it is re-created.
      FED_API_KEY_SECRET: props.apiKeySecretName,
      FED_AGENT_ID: config.agentId,
      FED_VERSION: props.version,
    };
    // Organisation sources (opt-in): the scope's role in each account listed at run time.
    const organizationRoles = organizationRoleArns(this, config.sources);
    const assumeRoleArns = [
      ...config.sources.flatMap((source) => (source.roleArn ? [source.roleArn] : [])),
      ...organizationRoles,
    ];
    const apiGatewayRegions = props.scopeApiGatewayRegions
      ? config.sources.length > 0
        ? config.sources.flatMap((source) => source.regions)
        : [this.region]
      : undefined;

    this.discovery = new Discovery(this, 'Discovery', {
      coreLayer: this.coreLayer.layer,
      table: props.table,
      environment,
      schedule: config.schedule,
      assumeRoleArns,
      apiGatewayRegions,
    });
    if (organizationRoles.length > 0) {
      grantOrganizationListing(this.discovery, this.discovery.handler, config.sources);
      acknowledgeOrganizationRoles(this.discovery.handler, organizationRoles);
    }
    if (fanOutEnabled(config)) {
      this.fanOut = new FanOut(this, 'FanOut', {
        discovery: this.discovery.handler,
        discoveryTimeout: this.discovery.timeout,
        options: config.fanOut,
      });
    }
    if (config.changeEvents.enabled) {
      const accountOfRole = (arn?: string) => (arn ? /^arn:[^:]+:iam::(\d{12}):/.exec(arn)?.[1] : undefined);
      this.changeEvents = new ChangeEvents(this, 'ChangeEvents', {
        discovery: this.discovery.handler,
        discoveryTimeout: this.discovery.timeout,
        options: config.changeEvents,
        forwardingAccounts: [
          ...config.sources.flatMap((s) => {
            const account = s.accountId ?? accountOfRole(s.roleArn);
            return account ? [account] : [];
          }),
          ...config.changeEvents.forwardingAccounts,
        ],
      });
    }
    this.subscriptions = new Subscriptions(this, 'Subscriptions', {
      coreLayer: this.coreLayer.layer,
      table: props.table,
      apiKeySecret: props.apiKeySecret,
      environment,
      assumeRoleArns,
      apiGatewayRegions,
      sweepLostKeys: config.sweepLostKeys,
    });
    // Discovery hands the keys of the subscriptions a plan removal revoked to the subscriptions function
    // (asynchronous `revoke-keys`): it may invoke that function and no other.
    this.discovery.handler.function.addEnvironment(
      'FED_SUBSCRIPTIONS_FUNCTION',
      this.subscriptions.handler.function.functionName,
    );
    this.subscriptions.grantInvoke(this.discovery.handler.role);
    if (organizationRoles.length > 0)
      acknowledgeOrganizationRoles(this.subscriptions.handler, organizationRoles);
    this.relay = new Relay(this, 'Relay', {
      coreLayer: this.coreLayer.layer,
      table: props.table,
      relayToken: this.secrets.relayToken,
      discovery: this.discovery.handler,
      subscriptions: this.subscriptions.handler,
      publishers: [this.discovery.handler, this.subscriptions.handler],
      environment,
      stageName: props.relayStageName,
      accessLogs: props.relayAccessLogs,
    });
    const functions = [
      this.discovery.handler,
      this.subscriptions.handler,
      this.relay.authorizer,
      this.relay.connection,
      this.relay.command,
    ];
    for (const fn of functions) fn.function.addLayers(this.configLayer.layer);
    this.observability = new Observability(this, 'Observability', {
      functions,
      deadLetterQueues: [
        {
          queue: this.discovery.deadLetterQueue,
          description: 'a discovery invocation or scheduled event failed',
        },
        ...(this.changeEvents
          ? [
              {
                queue: this.changeEvents.deadLetterQueue,
                description:
                  'a change event could not be processed; the next reconciliation run repairs what it missed',
              },
            ]
          : []),
        {
          queue: this.subscriptions.deadLetterQueue,
          description:
            'an asynchronous subscriptions invocation failed (a revoke-keys handover: its keys still exist; redrive it, docs/subscriptions.md)',
        },
      ],
      ...(this.fanOut
        ? { fanOutQueues: { queue: this.fanOut.queue, deadLetterQueue: this.fanOut.deadLetterQueue } }
        : {}),
      relayApi: this.relay.api,
      relayStage: this.relay.stage,
      alarmTopicArn: props.alarmTopicArn,
    });

    new CfnOutput(this, 'RelayUrl', {
      value: this.relay.url,
      description: 'wss:// URL the control plane connects to',
    });
    new CfnOutput(this, 'ConnectionsUrl', {
      value: this.relay.stage.callbackUrl,
      description: '@connections management endpoint of the relay',
    });
    new CfnOutput(this, 'RelayTokenSecretArn', {
      value: this.secrets.relayToken.secretArn,
      description: 'Secret holding the relay bearer token',
    });
    for (const fn of functions) {
      const outputId = `${fn.name.replace(/(^|-)(\w)/g, (_m, _dash, c: string) => c.toUpperCase())}FunctionName`;
      new CfnOutput(this, outputId, {
        value: fn.function.functionName,
        description: `The ${fn.name} function`,
      });
    }
    new CfnOutput(this, 'DiscoveryRoleArn', {
      value: this.discovery.handler.role.roleArn,
      description: 'Trusted by member-account roles (MemberAccountStack)',
    });
    new CfnOutput(this, 'SubscriptionsRoleArn', {
      value: this.subscriptions.handler.role.roleArn,
      description: 'Trusted by member-account roles (MemberAccountStack)',
    });
    new CfnOutput(this, 'DashboardName', { value: this.observability.dashboard.dashboardName });
  }
}

/**
 * Fails synth when a member-account session policy would exceed STS's 2,048 characters: each role's
 * policy (the function's statements, the longest partition name, its sources' regions), as the core
 * builds it at run time.
 */
function checkSessionPolicies(config: AgentConfig): void {
  const policies = [
    apiGatewayPolicyJson('discovery', { partition: 'aws-us-gov' }),
    apiGatewayPolicyJson('subscriptions', {
      partition: 'aws-us-gov',
      optIns: config.sweepLostKeys ? ['sweepLostKeys'] : [],
    }),
  ];
  for (const policy of policies) sessionPoliciesByRole(JSON.stringify(policy), config.sources);
}
