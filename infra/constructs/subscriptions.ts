import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  apiGatewayPolicyJson,
  documentedStatements,
  documentedStatementsJson,
} from '../iam/documented-policy.js';
import { grantInvokeUnqualified, grantLedger } from '../iam/grants.js';
import { acknowledgeDocumentedWildcards } from '../iam/nag.js';
import { FederationFunction } from './federation-function.js';

export interface SubscriptionsProps {
  readonly coreLayer: lambda.ILayerVersion;
  readonly table: dynamodb.ITable;
  /** The secret API key values are derived from. */
  readonly apiKeySecret: secretsmanager.ISecret;
  /** Environment shared by the agent's functions. */
  readonly environment: Record<string, string>;
  /** Roles of other accounts the function assumes (sources' `roleArn`). @default - none */
  readonly assumeRoleArns?: readonly string[];
  /** Narrow the documented API Gateway resources to these regions. @default - the documented `*` region */
  readonly apiGatewayRegions?: readonly string[];
}

/**
 * Subscriptions: the function that creates an API key on a usage plan and deletes it (the documented
 * `apigateway:POST` and `apigateway:DELETE` statements, nothing more). Invoked by the relay and by
 * operators (`aws lambda invoke`).
 */
export class Subscriptions extends Construct {
  readonly handler: FederationFunction;
  readonly apiGatewayPolicy: iam.Policy;

  constructor(scope: Construct, id: string, props: SubscriptionsProps) {
    super(scope, id);
    this.handler = new FederationFunction(this, 'Handler', {
      name: 'subscriptions',
      description: 'apigw-federation: subscribe/unsubscribe/get (API keys on usage plans)',
      coreLayer: props.coreLayer,
      environment: props.environment,
      retryAttempts: 0,
    });
    const role = this.handler.role;
    grantLedger(role, props.table);
    props.apiKeySecret.grantRead(role);

    const statements = documentedStatementsJson('subscriptions', { regions: props.apiGatewayRegions });
    this.apiGatewayPolicy = new iam.Policy(this, 'ApiGatewayPolicy', {
      statements: documentedStatements('subscriptions', { regions: props.apiGatewayRegions }),
      roles: [role],
    });
    acknowledgeDocumentedWildcards(this.apiGatewayPolicy, statements);

    if (props.assumeRoleArns && props.assumeRoleArns.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['sts:AssumeRole'],
          resources: [...new Set(props.assumeRoleArns)],
        }),
      );
      // Member roles carry the whole documented policy; the session keeps only this function's part.
      this.handler.addEnvironment(
        'FED_ASSUME_ROLE_POLICY',
        JSON.stringify(apiGatewayPolicyJson('subscriptions', { regions: props.apiGatewayRegions })),
      );
    }
  }

  /** Lets `grantee` invoke the subscriptions function. */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return grantInvokeUnqualified(grantee, this.handler.function);
  }
}
