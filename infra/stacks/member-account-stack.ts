import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { MemberAccountRole, type MemberAccountRoleProps } from '../constructs/member-account-role.js';

export type MemberAccountStackProps = StackProps & MemberAccountRoleProps;

/** Deployed in each member account a source reaches through `roleArn`. */
export class MemberAccountStack extends Stack {
  readonly memberRole: MemberAccountRole;

  constructor(scope: Construct, id: string, props: MemberAccountStackProps) {
    super(scope, id, props);
    this.memberRole = new MemberAccountRole(this, 'Member', props);
    new CfnOutput(this, 'MemberRoleArn', {
      value: this.memberRole.role.roleArn,
      description: "Put this ARN in the agent's config as the source's roleArn",
    });
  }
}
