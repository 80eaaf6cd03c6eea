import { Validations } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface SecretsProps {
  /** Length of the generated relay bearer token. @default 48 */
  readonly relayTokenLength?: number;
}

/**
 * The relay token: the bearer token the control plane presents on `$connect` (plain string), generated
 * by Secrets Manager at deploy time (never a default value, never in the template). (The API-key HMAC
 * secret is stateful: it lives in `StatefulStack`.)
 */
export class Secrets extends Construct {
  readonly relayToken: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: SecretsProps = {}) {
    super(scope, id);
    this.relayToken = new secretsmanager.Secret(this, 'RelayToken', {
      description: 'apigw-federation: bearer token the control plane presents to the relay ($connect)',
      generateSecretString: {
        passwordLength: props.relayTokenLength ?? 48,
        excludePunctuation: true,
        includeSpace: false,
      },
    });
    Validations.of(this.relayToken).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotated on demand by the operator (docs/deploy.md, "Rotating the relay token"); the authorizer caches the ' +
        'value briefly, so a rotation takes effect without a deploy and without a rotation Lambda.',
    });
  }
}
