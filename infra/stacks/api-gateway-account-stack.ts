import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import {
  ApiGatewayAccountLogging,
  type ApiGatewayAccountLoggingProps,
} from '../constructs/api-gateway-account-logging.js';

/**
 * Opt-in (`-c apiGatewayCloudWatchRole=true`): the account's API Gateway CloudWatch Logs role, which
 * WebSocket stage access logging needs. A stack of its own so that it outlives the agent (role and
 * setting retained) and so that deploying it is a visible, separate step: the setting is account-wide,
 * so the deploy fails rather than replace a role set before (unless `replaceExistingRole`).
 */
export interface ApiGatewayAccountStackProps extends StackProps, ApiGatewayAccountLoggingProps {}

export class ApiGatewayAccountStack extends Stack {
  readonly logging: ApiGatewayAccountLogging;

  constructor(scope: Construct, id: string, props: ApiGatewayAccountStackProps = {}) {
    super(scope, id, props);
    this.logging = new ApiGatewayAccountLogging(this, 'Logging', props);
    new CfnOutput(this, 'CloudWatchRoleArn', {
      value: this.logging.role.roleArn,
      description: "The role set as this account's API Gateway CloudWatch Logs role (retained)",
    });
  }
}
