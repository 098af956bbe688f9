// The lock leader's pod label (dsync.io/role=leader), which the chart's optional lock-leader
// Service selects. The label follows the group's role: looked at every few hundred ms, patched
// when it differs from what was last written (the first look also clears a label left by a
// crashed leader), retried with backoff when the API refuses, cleared on shutdown before the
// leadership is handed over.
import type { Logger } from 'pino';
import type { KubernetesApi } from './kubernetes.js';

/** How often the role is compared with the label. */
export const LABEL_CHECK_MS = 250;
/** Pause after a failed patch, doubling up to the max. */
export const LABEL_RETRY_MS_MIN = 500;
export const LABEL_RETRY_MS_MAX = 10_000;
/** How long shutdown waits for the label to be cleared. */
export const LABEL_CLEAR_TIMEOUT_MS = 2000;

export class LeaderLabeler {
  private timer: NodeJS.Timeout | null = null;
  /** What the pod's label says as far as we know (null: unknown, at start). */
  private labelled: boolean | null = null;
  private inFlight: Promise<void> | null = null;
  private retryAtMs = 0;
  private retryMs = LABEL_RETRY_MS_MIN;

  constructor(private readonly api: KubernetesApi, private readonly namespace: string,
    private readonly pod: string, private readonly isLeader: () => boolean,
    private readonly logger: Logger) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.check(), LABEL_CHECK_MS);
    this.timer.unref();
    this.check();
  }

  private check(): void {
    const want = this.isLeader();
    if (this.inFlight !== null || want === this.labelled || Date.now() < this.retryAtMs) return;
    this.inFlight = this.patch(want).finally(() => { this.inFlight = null; });
  }

  private async patch(leader: boolean): Promise<void> {
    try {
      await this.api.setLeaderLabel(this.namespace, this.pod, leader);
      this.labelled = leader;
      this.retryMs = LABEL_RETRY_MS_MIN;
      this.logger.info({ pod: this.pod, leader }, leader ? 'labelled this pod as the leader'
        : 'cleared the leader label of this pod');
    } catch (err) {
      this.retryAtMs = Date.now() + this.retryMs;
      this.retryMs = Math.min(2 * this.retryMs, LABEL_RETRY_MS_MAX);
      this.logger.warn({ err, pod: this.pod, leader }, 'could not patch the leader label; ' +
        'retrying (does the Role allow pods patch?)');
    }
  }

  /** Stops following the role and clears the label (bounded by LABEL_CLEAR_TIMEOUT_MS). */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    if (this.labelled === false) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.patch(false),
      new Promise<void>((r) => { timer = setTimeout(r, LABEL_CLEAR_TIMEOUT_MS); })]);
    clearTimeout(timer);
  }
}
