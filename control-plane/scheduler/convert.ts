/** Proto ↔ routing value mapping, in one place. */
import { QosClass, Strategy, type Resources as ProtoResources } from '../../proto/gen/runmesh/v1/job.js';
import type { QosClass as RoutingQos, Resources, StrategyName } from '../../routing/index.js';

export const qosName = (q: QosClass): RoutingQos =>
  q === QosClass.QOS_CLASS_CRITICAL ? 'critical' : q === QosClass.QOS_CLASS_BATCH ? 'batch' : 'standard';

export const strategyName = (s: Strategy): StrategyName => (s === Strategy.STRATEGY_BINPACK ? 'binpack' : 'spread');

export const resourcesOf = (r: ProtoResources | undefined): Resources => ({
  slots: r?.slots || 1,
  cpuMillis: r?.cpuMillis ?? 0,
  memoryMb: r?.memoryMb ?? 0,
});

export const ZERO: Resources = { slots: 0, cpuMillis: 0, memoryMb: 0 };

export const add = (a: Resources, b: Resources, sign = 1): Resources => ({
  slots: a.slots + sign * b.slots,
  cpuMillis: a.cpuMillis + sign * b.cpuMillis,
  memoryMb: a.memoryMb + sign * b.memoryMb,
});
