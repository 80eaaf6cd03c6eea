import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { LEDGER_KEYS } from '../../layers/federation-core/src/ledger/table.js';

/** Item-level DynamoDB actions the core's ledger repositories use (no table management, no streams). */
export const LEDGER_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:ConditionCheckItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:DescribeTable',
] as const;

/**
 * Read/write access to the ledger items and its indexes (`gsi1`, `gsi2`), named exactly: unlike
 * `grantReadWriteData` (which grants `index/*`), no wildcard.
 */
export function grantLedger(grantee: iam.IGrantable, table: dynamodb.ITable): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: [...LEDGER_ACTIONS],
    resourceArns: [
      table.tableArn,
      `${table.tableArn}/index/${LEDGER_KEYS.gsi1.name}`,
      `${table.tableArn}/index/${LEDGER_KEYS.gsi2.name}`,
    ],
  });
}

/**
 * `lambda:InvokeFunction` on the function itself (callers invoke it by name, unqualified): unlike
 * `grantInvoke`, no `:*` for versions and aliases.
 */
export function grantInvokeUnqualified(grantee: iam.IGrantable, fn: lambda.IFunction): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['lambda:InvokeFunction'],
    resourceArns: [fn.functionArn],
  });
}
