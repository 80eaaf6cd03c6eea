import { type App, type Environment, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { AgentConfig } from '../layers/federation-core/src/config/schema.js';
import { ChangeEventForwarding } from './constructs/change-events.js';
import { ApiGatewayAccountStack } from './stacks/api-gateway-account-stack.js';
import { FederationStack } from './stacks/federation-stack.js';
import { MemberAccountStack } from './stacks/member-account-stack.js';
import { StatefulStack } from './stacks/stateful-stack.js';

/** Settings of the CDK app, already read and validated by `bin/app.ts`. */
export interface FederationAppSettings {
  /** The validated agent settings. */
  readonly config: AgentConfig;
  /** Version reported to the control plane. */
  readonly version: string;
  /** Account/region of the agent's stacks. @default - environment-agnostic */
  readonly env?: Environment;
  /** Prefix of the stack names. @default 'ApigwFederation' */
  readonly stackPrefix?: string;
  /** See `FederationStackProps.scopeApiGatewayRegions`. @default false */
  readonly scopeApiGatewayRegions?: boolean;
  /** @default 'live' */
  readonly relayStageName?: string;
  readonly alarmTopicArn?: string;
  /** Access logs of the relay's stage (the account already has its API Gateway CloudWatch role). @default false */
  readonly relayAccessLogs?: boolean;
  /**
   * Also synthesize `ApiGatewayAccountStack` (the account's API Gateway CloudWatch Logs role, retained),
   * deployed before the agent, and turn the relay's access logs on. @default false
   */
  readonly apiGatewayCloudWatchRole?: boolean;
  /** With `apiGatewayCloudWatchRole`: replace a role someone else set on the account. @default false */
  readonly replaceApiGatewayCloudWatchRole?: boolean;
  /** When set, also synthesizes the member-account stack (deployed in another account). */
  readonly member?: {
    readonly trustedRoleArns: readonly string[];
    readonly roleName?: string;
    readonly env?: Environment;
    /**
     * With `changeEvents` on: the agent's event bus the member forwards to.
     * @default - the default bus of the agent's `env` (account and region must be known)
     */
    readonly agentEventBusArn?: string;
  };
  /** Apply cdk-nag AwsSolutions checks (synth fails on an unacknowledged finding). @default true */
  readonly nag?: boolean;
}

export interface FederationAppStacks {
  readonly stateful: StatefulStack;
  readonly federation: FederationStack;
  readonly member?: MemberAccountStack;
  /**
   * With `changeEvents` on: one small stack per other region of the agent's own account that a source
   * discovers, holding the rule that forwards that region's API Gateway events to the agent's bus.
   */
  readonly forwarding: Stack[];
  readonly apiGatewayAccount?: ApiGatewayAccountStack;
}

/** Composes the app's stacks and applies cdk-nag. Reads neither context nor environment. */
export function createFederationApp(app: App, settings: FederationAppSettings): FederationAppStacks {
  const prefix = settings.stackPrefix ?? 'ApigwFederation';
  const stateful = new StatefulStack(app, `${prefix}Stateful`, {
    env: settings.env,
    description: 'apigw-federation: ledger table and API-key HMAC secret (retained)',
    apiKeySecretName: `${prefix}/api-key-hmac`,
  });
  const apiGatewayAccount = settings.apiGatewayCloudWatchRole
    ? new ApiGatewayAccountStack(app, `${prefix}ApiGatewayAccount`, {
        env: settings.env,
        description: "apigw-federation (opt-in): the account's API Gateway CloudWatch Logs role (retained)",
        replaceExistingRole: settings.replaceApiGatewayCloudWatchRole,
      })
    : undefined;
  const federation = new FederationStack(app, prefix, {
    env: settings.env,
    description: 'apigw-federation: discovery, subscriptions, relay and observability',
    config: settings.config,
    table: stateful.table,
    apiKeySecret: stateful.apiKeySecret,
    apiKeySecretName: stateful.apiKeySecretName,
    version: settings.version,
    scopeApiGatewayRegions: settings.scopeApiGatewayRegions,
    relayStageName: settings.relayStageName,
    alarmTopicArn: settings.alarmTopicArn,
    relayAccessLogs: settings.relayAccessLogs || settings.apiGatewayCloudWatchRole,
  });
  federation.addStackDependency(stateful);
  if (apiGatewayAccount) federation.addStackDependency(apiGatewayAccount);
  let agentEventBusArn: string | undefined;
  if (settings.member && settings.config.changeEvents.enabled) {
    const { account, region } = settings.env ?? {};
    agentEventBusArn =
      settings.member.agentEventBusArn ??
      (account && region
        ? `arn:${federation.partition}:events:${region}:${account}:event-bus/default`
        : undefined);
    if (!agentEventBusArn) {
      throw new Error(
        'changeEvents with a member stack: the agent account and region (or -c agentEventBusArn) are needed for the forwarding rule',
      );
    }
  }
  const member = settings.member
    ? new MemberAccountStack(app, `${prefix}Member`, {
        env: settings.member.env,
        description: 'apigw-federation: member-account role with the documented minimum API Gateway policy',
        trustedRoleArns: settings.member.trustedRoleArns,
        roleName: settings.member.roleName,
        sweepLostKeys: settings.config.sweepLostKeys,
        agentEventBusArn,
      })
    : undefined;
  const forwarding: Stack[] = [];
  const { account, region } = settings.env ?? {};
  if (settings.config.changeEvents.enabled && account && region) {
    const ownRegions = new Set(
      settings.config.sources
        .filter((s) => !s.roleArn && (!s.accountId || s.accountId === account))
        .flatMap((s) => s.regions),
    );
    for (const other of [...ownRegions].filter((r) => r !== region).sort()) {
      const stack = new Stack(app, `${prefix}Forwarding-${other}`, {
        env: { account, region: other },
        description: `apigw-federation: forwards ${other}'s API Gateway change events to the agent's bus in ${region}`,
      });
      new ChangeEventForwarding(stack, 'ChangeEventForwarding', {
        agentEventBusArn: `arn:${federation.partition}:events:${region}:${account}:event-bus/default`,
      });
      forwarding.push(stack);
    }
  }
  if (settings.nag ?? true) {
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  }
  return { stateful, federation, member, forwarding, apiGatewayAccount };
}
