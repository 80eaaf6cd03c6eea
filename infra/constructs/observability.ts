import { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ERROR_METRICS, FEDERATION_METRICS } from '../../layers/federation-core/src/metrics.js';
import {
  type FederationFunction,
  type FunctionName,
  METRICS_NAMESPACE,
  serviceName,
} from './federation-function.js';

/** A dead-letter queue of the agent and what a message in it means (the alarm's description). */
export interface DeadLetterQueue {
  readonly queue: sqs.IQueue;
  readonly description: string;
}

export interface ObservabilityProps {
  /** Every function of the agent (errors and throttles). */
  readonly functions: readonly FederationFunction[];
  /** Dead-letter queues: an alarm fires when one holds a message; `description` says what failed. */
  readonly deadLetterQueues: readonly DeadLetterQueue[];
  /**
   * Fan-out (when on): its dead-letter queue (a unit that failed on each delivery: alarm) and its queue
   * (units waiting; an alarm when the oldest waits longer than an hour: concurrency too low or a stuck run).
   */
  readonly fanOutQueues?: { readonly queue: sqs.IQueue; readonly deadLetterQueue: sqs.IQueue };
  /** The relay stage (connections and messages). */
  readonly relayApi: apigwv2.IWebSocketApi;
  readonly relayStage: apigwv2.IWebSocketStage;
  /** SNS topic the alarms notify. @default - alarms without actions */
  readonly alarmTopicArn?: string;
}

/**
 * Dashboard and alarms: discovery runs (complete, partial, failed), API Gateway calls and throttles,
 * subscription results, errors by code, function errors and throttles, dead-letter queues, relay
 * traffic. Alarms on the agent's own faults only: discovery and subscriptions answer a caller's mistake
 * (VALIDATION, NOT_FOUND, CONFLICT, ...) with a typed function error, so their alarms watch the
 * handlers' `Faults` metric (fault codes) and timeouts (Duration near the timeout) instead of Lambda's
 * `Errors`; the relay functions fail only on faults, so their `Errors` are alarmed. Plus dead-letter
 * messages, failed runs and repeated partial runs.
 */

/** Functions whose failures carry an error code (`Errors` by code, `Faults`) and may be the caller's. */
const TYPED_ERROR_FUNCTIONS: ReadonlySet<FunctionName> = new Set<FunctionName>([
  'discovery',
  'subscriptions',
]);

/** A timeout is reported when an invocation ran this share of the function's timeout. */
const TIMEOUT_SHARE = 0.95;
export class Observability extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const emf = (fn: FunctionName, metricName: string, period = Duration.minutes(5)) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: serviceName(fn) },
        statistic: cloudwatch.Stats.SUM,
        period,
      });
    const d = FEDERATION_METRICS.discovery;
    const s = FEDERATION_METRICS.subscriptions;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(1),
    });
    const relayMetric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: props.relayApi.apiId, Stage: props.relayStage.stageName },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Discovery runs',
        left: [emf('discovery', d.runs), emf('discovery', d.partialRuns), emf('discovery', d.failedRuns)],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'API Gateway calls and throttles',
        left: [emf('discovery', d.apiCalls)],
        right: [emf('discovery', d.throttles)],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Catalog changes',
        left: [emf('discovery', d.apisUpserted), emf('discovery', d.apisRemoved)],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Subscription results',
        left: [
          emf('subscriptions', s.created),
          emf('subscriptions', s.revoked),
          emf('subscriptions', s.failed),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Errors by code (discovery, subscriptions)',
        left: [
          new cloudwatch.MathExpression({
            expression: `SEARCH('{${METRICS_NAMESPACE},code,service} MetricName="${ERROR_METRICS.errors}"', 'Sum', 300)`,
            label: 'Errors',
            period: Duration.minutes(5),
          }),
        ],
        right: [...TYPED_ERROR_FUNCTIONS].map((fn) => emf(fn, ERROR_METRICS.faults)),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Function errors',
        left: props.functions.map((f) =>
          f.function.metricErrors({
            label: f.name,
            period: Duration.minutes(5),
            statistic: cloudwatch.Stats.SUM,
          }),
        ),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Function throttles',
        left: props.functions.map((f) =>
          f.function.metricThrottles({
            label: f.name,
            period: Duration.minutes(5),
            statistic: cloudwatch.Stats.SUM,
          }),
        ),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Relay',
        left: [relayMetric('ConnectCount'), relayMetric('MessageCount')],
        right: [relayMetric('ClientError'), relayMetric('ExecutionError')],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues (visible messages)',
        left: props.deadLetterQueues.map(({ queue }) =>
          queue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(5),
            statistic: cloudwatch.Stats.MAXIMUM,
          }),
        ),
        width: 12,
      }),
    );

    for (const f of props.functions) {
      if (!TYPED_ERROR_FUNCTIONS.has(f.name)) {
        this.alarm(`Errors-${f.name}`, {
          metric: f.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
          threshold: 1,
          alarmDescription: `apigw-federation: the ${f.name} function reported errors`,
        });
        continue;
      }
      this.alarm(`Faults-${f.name}`, {
        metric: emf(f.name, ERROR_METRICS.faults),
        threshold: 1,
        alarmDescription: `apigw-federation: the ${f.name} function failed with a fault code (INTERNAL, AWS_*, CONFIG)`,
      });
      const timeout = (f.function.timeout ?? Duration.seconds(3)).toMilliseconds();
      this.alarm(`Timeouts-${f.name}`, {
        metric: f.function.metricDuration({
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: TIMEOUT_SHARE * timeout,
        alarmDescription: `apigw-federation: a ${f.name} invocation ran into its ${timeout / 1000} s timeout`,
      });
    }
    if (props.fanOutQueues) {
      this.alarm('FanOutDeadLetterMessages', {
        metric: props.fanOutQueues.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 1,
        alarmDescription:
          'apigw-federation: an account-region of a discovery run failed on each delivery (fan-out dead-letter queue); the run counted it as failed',
      });
      this.alarm('FanOutBacklog', {
        metric: props.fanOutQueues.queue.metricApproximateAgeOfOldestMessage({
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 3600,
        alarmDescription:
          'apigw-federation: account-regions of a discovery run waited more than an hour (raise fanOut.maxConcurrency)',
      });
    }
    props.deadLetterQueues.forEach(({ queue, description }, index) => {
      this.alarm(`DeadLetterMessages${index === 0 ? '' : index}`, {
        metric: queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 1,
        alarmDescription: `apigw-federation: ${description} (dead-letter queue)`,
      });
    });
    this.alarm('FailedRuns', {
      metric: emf('discovery', d.failedRuns),
      threshold: 1,
      alarmDescription: 'apigw-federation: a discovery run failed',
    });
    this.alarm('PartialRuns', {
      metric: emf('discovery', d.partialRuns, Duration.hours(1)),
      threshold: 2,
      alarmDescription: 'apigw-federation: two or more partial discovery runs within an hour',
    });

    if (props.alarmTopicArn) {
      const topic = sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
      for (const alarm of this.alarms) alarm.addAlarmAction(new actions.SnsAction(topic));
    }
  }

  private alarm(
    id: string,
    props: { metric: cloudwatch.IMetric; threshold: number; alarmDescription: string },
  ) {
    const alarm = new cloudwatch.Alarm(this, id, {
      ...props,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarms.push(alarm);
    return alarm;
  }
}
