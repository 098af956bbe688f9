// The `k6/metrics` module: custom Counter, Gauge, Rate and Trend.
import { runtime, type MetricType } from '../runtime.js';

abstract class Metric {
  protected abstract readonly type: MetricType;
  constructor(readonly name: string, protected readonly isTime = false) {}

  add(value: number | boolean, tags: Record<string, string> = {}): void {
    runtime().add(this.name, this.type, Number(value), tags, this.isTime);
  }
}

export class Counter extends Metric { protected readonly type = 'counter'; }
export class Gauge extends Metric { protected readonly type = 'gauge'; }
export class Rate extends Metric { protected readonly type = 'rate'; }
export class Trend extends Metric { protected readonly type = 'trend'; }

export default { Counter, Gauge, Rate, Trend };
