// One caller waiting on a Raft group (a proposal or a read): a promise that settles exactly
// once, by its answer, by its deadline or by its AbortSignal, and tells its owner when it has
// settled so that counts of pending work stay exact (count a waiter before constructing it:
// one whose signal is already aborted settles inside the constructor).

export class Waiter<T> {
  done = false;
  readonly startNs = process.hrtime.bigint();
  readonly promise: Promise<T>;
  private resolveFn!: (v: T) => void;
  private rejectFn!: (e: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort: (() => void) | null = null;

  constructor(
    timeoutMs: number,
    timeoutError: () => Error,
    private readonly onSettled: (w: Waiter<T>) => void,
    private readonly signal?: AbortSignal,
    abortError?: () => Error,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    this.timer = setTimeout(() => this.reject(timeoutError()), timeoutMs);
    if (signal !== undefined && abortError !== undefined) {
      const onAbort = (): void => this.reject(abortError());
      this.onAbort = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
    }
  }

  resolve(v: T): void {
    if (!this.settle()) return;
    this.resolveFn(v);
  }

  reject(e: Error): void {
    if (!this.settle()) return;
    this.rejectFn(e);
  }

  private settle(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    if (this.onAbort !== null) this.signal?.removeEventListener('abort', this.onAbort);
    this.onSettled(this);
    return true;
  }
}
