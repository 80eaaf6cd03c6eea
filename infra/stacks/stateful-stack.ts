import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { LEDGER_KEYS } from '../../layers/federation-core/src/ledger/table.js';

/** Logical id of the ledger table. Pinned: a change would replace the table (and its data). */
export const LEDGER_TABLE_LOGICAL_ID = 'LedgerTable';

export type StatefulStackProps = StackProps;

/**
 * Stateful resources, deployed on their own and retained on delete: the ledger table (catalog,
 * subscriptions, connections, runs, outbox, leases). Its key layout is `LEDGER_KEYS` of the core, the
 * same one `createLedgerTable` creates for the local runtime and tests.
 */
export class StatefulStack extends Stack {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, props);
    this.table = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: LEDGER_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: LEDGER_KEYS.ttlAttribute,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: LEDGER_KEYS.gsi1.name,
      partitionKey: { name: LEDGER_KEYS.gsi1.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_KEYS.gsi1.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    (this.table.node.defaultChild as dynamodb.CfnTable).overrideLogicalId(LEDGER_TABLE_LOGICAL_ID);
    new CfnOutput(this, 'TableName', {
      value: this.table.tableName,
      description: 'Ledger table (FED_TABLE_NAME)',
    });
  }
}
