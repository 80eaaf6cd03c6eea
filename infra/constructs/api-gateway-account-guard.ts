/**
 * The deploy-time check of `ApiGatewayAccountLogging`: a CloudFormation custom resource whose handler
 * reads the account's API Gateway settings (`GetAccount`) and fails the deploy when a CloudWatch Logs
 * role is already set that is not this stack's, unless replacing it was asked for. Inline code (no
 * asset), so it runs on the Lambda runtime's own SDK: deploy-time only, never on the agent's path.
 */
export const ACCOUNT_GUARD_SOURCE = `
const { APIGatewayClient, GetAccountCommand } = require('@aws-sdk/client-api-gateway');

async function decide(event) {
  if (event.RequestType === 'Delete') return { status: 'SUCCESS', reason: 'nothing to check on delete' };
  const props = event.ResourceProperties || {};
  const ours = props.RoleArn;
  const previous = (event.OldResourceProperties || {}).RoleArn;
  const account = await new APIGatewayClient({}).send(new GetAccountCommand({}));
  const current = account.cloudwatchRoleArn;
  if (!current || current === ours || current === previous || props.Replace === 'true') {
    return { status: 'SUCCESS', reason: current ? 'role ' + current + ' may be replaced' : 'no role set yet' };
  }
  return {
    status: 'FAILED',
    reason:
      "This account's API Gateway CloudWatch Logs role is already " + current + ' (set by another stack or by hand): ' +
      'deploy without -c apiGatewayCloudWatchRole and use -c relayAccessLogs=true (that role serves the relay too), ' +
      'or add -c replaceApiGatewayCloudWatchRole=true to replace it (docs/deploy.md).',
  };
}

exports.handler = async (event) => {
  let outcome;
  try {
    outcome = await decide(event);
  } catch (error) {
    outcome = { status: 'FAILED', reason: 'GetAccount failed: ' + (error && error.name) };
  }
  const body = JSON.stringify({
    Status: outcome.status,
    Reason: outcome.reason,
    PhysicalResourceId: event.PhysicalResourceId || 'api-gateway-account-role-guard',
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  });
  const response = await fetch(event.ResponseURL, { method: 'PUT', headers: { 'content-type': '' }, body });
  if (!response.ok) throw new Error('CloudFormation response failed: ' + response.status);
  return outcome;
};
`;
