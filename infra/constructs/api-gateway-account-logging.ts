import { CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ACCOUNT_GUARD_SOURCE } from './api-gateway-account-guard.js';

/**
 * The account-level API Gateway setting WebSocket stage access logging needs: a role API Gateway uses
 * to write to CloudWatch Logs (`AWS::ApiGateway::Account`). One per account and region, shared by
 * everything in it, so both the role and the setting are retained when their stack is deleted: another
 * API's logging may depend on them. Deployed only on request (`-c apiGatewayCloudWatchRole=true`), in
 * a stack of its own (`ApiGatewayAccountStack`), and never over a role someone else set: a custom
 * resource checks the account first and fails the deploy then (unless `replaceExistingRole`).
 */
export interface ApiGatewayAccountLoggingProps {
  /**
   * Replace a CloudWatch Logs role another stack (or a person) set on the account. Without it the
   * deploy fails, before the setting is touched, when the account has a role that is not this one.
   * @default false
   */
  readonly replaceExistingRole?: boolean;
}

export class ApiGatewayAccountLogging extends Construct {
  readonly role: iam.Role;
  readonly account: apigateway.CfnAccount;
  /** The deploy-time check that no other role is replaced silently. */
  readonly guard: CustomResource;

  constructor(scope: Construct, id: string, props: ApiGatewayAccountLoggingProps = {}) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway (account setting): writes WebSocket access logs to CloudWatch Logs',
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs'),
      ],
    });
    this.role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    this.account = new apigateway.CfnAccount(this, 'Account', { cloudWatchRoleArn: this.role.roleArn });
    this.account.applyRemovalPolicy(RemovalPolicy.RETAIN);

    // Before the setting is written: is another role set there already?
    const stack = Stack.of(this);
    const guardLogs = new logs.LogGroup(this, 'GuardLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const guardRole = new iam.Role(this, 'GuardRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: "apigw-federation: reads the account's API Gateway settings before they are set",
    });
    guardLogs.grantWrite(guardRole);
    guardRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['apigateway:GET'],
        resources: [`arn:${stack.partition}:apigateway:${stack.region}::/account`],
      }),
    );
    const guardFunction = new lambda.Function(this, 'Guard', {
      description:
        'apigw-federation: refuses to replace an API Gateway CloudWatch Logs role set by someone else',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(ACCOUNT_GUARD_SOURCE),
      role: guardRole,
      logGroup: guardLogs,
      timeout: Duration.seconds(30),
    });
    this.guard = new CustomResource(this, 'NoOtherRole', {
      serviceToken: guardFunction.functionArn,
      resourceType: 'Custom::ApiGatewayAccountRoleGuard',
      properties: { RoleArn: this.role.roleArn, Replace: String(props.replaceExistingRole ?? false) },
    });
    this.account.node.addDependency(this.guard);
    Validations.of(guardFunction).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22, the runtime of every function of the agent (docs/deploy.md); a deploy-time check with inline code.',
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        'The AWS managed policy documented for the API Gateway account logging role; API Gateway creates the log ' +
        'groups it writes to, so their names are not known in advance.',
    });
  }
}
