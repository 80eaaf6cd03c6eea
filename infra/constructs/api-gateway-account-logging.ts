import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/**
 * The account-level API Gateway setting WebSocket stage access logging needs: a role API Gateway uses
 * to write to CloudWatch Logs (`AWS::ApiGateway::Account`). One per account and region, shared by
 * everything in it, so both the role and the setting are retained when their stack is deleted: another
 * API's logging may depend on them. Deployed only on request (`-c apiGatewayCloudWatchRole=true`), in
 * a stack of its own (`ApiGatewayAccountStack`).
 */
export class ApiGatewayAccountLogging extends Construct {
  readonly role: iam.Role;
  readonly account: apigateway.CfnAccount;

  constructor(scope: Construct, id: string) {
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
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        'The AWS managed policy documented for the API Gateway account logging role; API Gateway creates the log ' +
        'groups it writes to, so their names are not known in advance.',
    });
  }
}
