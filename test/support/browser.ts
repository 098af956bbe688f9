// Real headless Chromium for the page tests and the screenshot script (playwright-core drives
// the system's /usr/bin/chromium; nothing is downloaded). Each browser gets a fresh profile
// directory, and each page records what a person would see go wrong: console errors, uncaught
// exceptions, failed requests, and any request that leaves the node that served the page.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.DSYNC_CHROMIUM ?? '/usr/bin/chromium';

export interface RunningBrowser {
  readonly browser: BrowserContext;
  close(): Promise<void>;
}

export interface WatchedPage {
  readonly page: Page;
  /** Console errors, page errors, failed and foreign requests, in order. */
  readonly problems: string[];
}

export async function launchBrowser(): Promise<RunningBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'dsync-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-dev-shm-usage'];
  let context: BrowserContext;
  try {
    // A persistent context is how playwright takes a --user-data-dir of our choosing.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH, headless: true, args,
      viewport: { width: 1440, height: 1000 }, timeout: 30_000,
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`could not start ${CHROMIUM_PATH}; install it (apt-get install -y ` +
      `chromium) or set DSYNC_CHROMIUM: ${(err as Error).message}`, { cause: err });
  }
  return {
    browser: context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A new tab whose problems are recorded; requests may go to `origin` only. */
export async function watchedPage(b: RunningBrowser, origin: string): Promise<WatchedPage> {
  const page = await b.browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A poll cut short by navigation or by closing the page is not a fault of the page.
    const why = r.failure()?.errorText ?? '';
    if (!/ERR_ABORTED/.test(why)) problems.push(`request failed: ${r.url()} (${why})`);
  });
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:')) {
      problems.push(`request outside the node: ${url}`);
    }
  });
  return { page, problems };
}

export type { Browser, Page };
