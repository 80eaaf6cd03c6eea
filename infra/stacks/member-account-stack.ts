import { CfnOutput, LegacyStackSynthesizer, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ChangeEventForwarding } from '../constructs/change-events.js';
import { MemberAccountRole, type MemberAccountRoleProps } from '../constructs/member-account-role.js';

export type MemberAccountStackProps = StackProps &
  MemberAccountRoleProps & {
    /**
     * With `changeEvents` on: the agent's event bus, to which this account-region forwards its API
     * Gateway change events. @default - no forwarding
     */
    readonly agentEventBusArn?: string;
  };

/**
 * Deployed in each member account a source reaches through `roleArn`. It has no assets, so it is
 * synthesized bootstrapless (`LegacyStackSynthesizer`: no bootstrap version check, no deploy roles, no
 * asset manifest; the template is deployed inline with the caller's credentials): no `cdk bootstrap` in
 * member accounts, and its template deploys as it is with `aws cloudformation deploy` or as a StackSet
 * over an organization (docs/deploy.md, section 3).
 */
export class MemberAccountStack extends Stack {
  readonly memberRole: MemberAccountRole;
  readonly forwarding?: ChangeEventForwarding;

  constructor(scope: Construct, id: string, props: MemberAccountStackProps) {
    super(scope, id, { ...props, synthesizer: props.synthesizer ?? new LegacyStackSynthesizer() });
    this.memberRole = new MemberAccountRole(this, 'Member', props);
    if (props.agentEventBusArn) {
      this.forwarding = new ChangeEventForwarding(this, 'ChangeEventForwarding', {
        agentEventBusArn: props.agentEventBusArn,
      });
    }
    new CfnOutput(this, 'MemberRoleArn', {
      value: this.memberRole.role.roleArn,
      description: "Put this ARN in the agent's config as the source's roleArn",
    });
  }
}
