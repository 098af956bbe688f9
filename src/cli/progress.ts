// Progress of long work on stderr (stdout stays data): on a terminal one line rewritten in
// place, elsewhere a line at once and then one every DSYNC_PROGRESS_MS (default 5 s), so that
// logs of CI jobs and scripts show the command is alive without drowning in updates.

export const DEFAULT_PROGRESS_MS = 5_000;
const TTY_REFRESH_MS = 250;

export interface Progress {
  /** Prints the line now (a state change worth seeing at once). */
  update(): void;
  /** Clears the terminal line; no more updates. */
  stop(): void;
}

export function startProgress(line: () => string,
  out: NodeJS.WriteStream = process.stderr): Progress {
  const tty = out.isTTY === true;
  const envMs = Number(process.env.DSYNC_PROGRESS_MS);
  const everyMs = tty ? TTY_REFRESH_MS
    : Number.isSafeInteger(envMs) && envMs > 0 ? envMs : DEFAULT_PROGRESS_MS;
  const show = (): void => {
    const text = line();
    out.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
  };
  show();
  const timer = setInterval(show, everyMs);
  timer.unref();
  return {
    update: show,
    stop: () => {
      clearInterval(timer);
      if (tty) out.write('\r\x1b[K');
    },
  };
}

/** `65000` → `1m05s`. */
export function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
