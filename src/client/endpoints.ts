// The nodes one service client talks to. It starts from the URLs it was given (its seeds),
// learns the other members from `GET /v1/cluster` in the background and again after a
// failure, and picks the node for each attempt: the service's leader when it has one (no
// forwarding hop), else the node that answered last, else the next one that is not known to
// be down. Seeds are never dropped: behind a port-forward or a load balancer the members'
// own URLs may not resolve from where the client runs.

/** A member of a service as `GET /v1/cluster` lists it. */
export interface Member {
  readonly id: string;
  readonly url: string;
}

export interface Membership {
  readonly members: readonly Member[];
  /** The id of the member that serves writes, when the service has one. */
  readonly leader: string | null;
}

/** Asks one node for the membership: null when it does not say now (no answer, no leader),
 * 'unsupported' when the service has no membership route (discovery then stops). */
export type Discover = (url: string) => Promise<Membership | null | 'unsupported'>;

export interface EndpointsOptions {
  /** The URLs given, or (for a list that mixes services) how to find this service's among
   * them; a rejection fails the call that waited for it, and the next call tries again. */
  readonly seeds: readonly string[] | (() => Promise<readonly string[]>);
  /** Null: use the seeds only. */
  readonly discover: Discover | null;
  /** At most one discovery per this many ms. */
  readonly refreshMsMin: number;
  /** A node that refused a connection is skipped for this long at first, doubling up to
   * downMsMax while it stays down. */
  readonly downMsMin: number;
  readonly downMsMax: number;
  readonly random?: () => number;
}

interface Endpoint {
  readonly url: string;
  id: string | null;
  readonly seed: boolean;
  downUntil: number;
  downMs: number;
}

/** `http://h:1/` and `http://h:1` are one node. */
export function normalizeUrl(u: string): string {
  return u.replace(/\/+$/, '');
}

export class Endpoints {
  private list: Endpoint[] = [];
  private current = 0;
  private leader: string | null = null;
  private seedsLoading: Promise<void> | null = null;
  private refreshing: Promise<void> | null = null;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;
  private readonly random: () => number;
  private unsupported = false;

  constructor(private readonly o: EndpointsOptions) {
    this.random = o.random ?? Math.random;
    if (Array.isArray(o.seeds)) this.setSeeds(o.seeds as readonly string[]);
  }

  /** Every URL known now, seeds first. */
  get urls(): string[] {
    return this.list.map((e) => e.url);
  }

  /** Resolves once the seeds are known; starts the first discovery without waiting for it. */
  async ready(): Promise<void> {
    if (this.list.length === 0) {
      const seeds = this.o.seeds;
      if (typeof seeds !== 'function') throw new TypeError('DsyncClient: no node URL given');
      this.seedsLoading ??= seeds().then((s) => this.setSeeds(s))
        .finally(() => { this.seedsLoading = null; });
      await this.seedsLoading;
    }
    if (this.lastRefreshAt === Number.NEGATIVE_INFINITY) void this.refresh();
  }

  /** The node for the next attempt of a call that already tried `tried`. */
  pick(tried: ReadonlySet<string>, nowMs: number): string {
    const up = (e: Endpoint): boolean => e.downUntil <= nowMs && !tried.has(e.url);
    const leader = this.leader === null ? undefined
      : this.list.find((e) => e.id === this.leader && up(e));
    if (leader) return leader.url;
    for (let i = 0; i < this.list.length; i++) {
      const e = this.list[(this.current + i) % this.list.length]!;
      if (up(e)) return e.url;
    }
    // Everything was tried or is down: the node that comes back soonest.
    const untried = this.list.filter((e) => !tried.has(e.url));
    const pool = untried.length > 0 ? untried : this.list;
    return pool.reduce((a, b) => (b.downUntil < a.downUntil ? b : a)).url;
  }

  /** `url` answered: it becomes the node to ask first. */
  succeeded(url: string): void {
    const i = this.list.findIndex((e) => e.url === url);
    if (i < 0) return;
    this.current = i;
    const e = this.list[i]!;
    e.downUntil = 0;
    e.downMs = this.o.downMsMin;
  }

  /** `url` failed. `down`: it cannot be reached at all (skip it for a while); otherwise it
   * was slow or unready (only move on). Either way the membership is looked up again. */
  failed(url: string, down: boolean, nowMs: number): void {
    const i = this.list.findIndex((e) => e.url === url);
    if (i >= 0) {
      const e = this.list[i]!;
      if (down) {
        e.downUntil = nowMs + e.downMs;
        e.downMs = Math.min(this.o.downMsMax, e.downMs * 2);
      }
      if (this.current === i) this.current = (i + 1) % this.list.length;
      if (e.id !== null && e.id === this.leader) this.leader = null;
    }
    void this.refresh();
  }

  /** A node named the leader (an UNAVAILABLE answer's `leader`). */
  leaderHint(id: string | null): void {
    if (id !== null && this.list.some((e) => e.id === id)) this.leader = id;
  }

  /** Looks the membership up on the first node that says; at most once per refreshMsMin.
   * Never rejects: discovery is an optimisation, the seeds always remain. */
  refresh(): Promise<void> {
    const discover = this.o.discover;
    if (discover === null || this.unsupported || this.list.length === 0) {
      return Promise.resolve();
    }
    if (this.refreshing) return this.refreshing;
    const now = performance.now();
    if (now - this.lastRefreshAt < this.o.refreshMsMin) return Promise.resolve();
    this.lastRefreshAt = now;
    this.refreshing = (async () => {
      // Nodes known to be up first.
      const order = [...this.list].sort((a, b) => a.downUntil - b.downUntil);
      for (const e of order) {
        const m = await discover(e.url).catch(() => null);
        if (m === 'unsupported') {
          this.unsupported = true;
          return;
        }
        if (m !== null) {
          this.merge(m);
          return;
        }
      }
    })().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  private setSeeds(seeds: readonly string[]): void {
    if (seeds.length === 0) throw new TypeError('DsyncClient: no node URL given');
    this.list = [...new Set(seeds.map(normalizeUrl))].map((url) => ({
      url, id: null, seed: true, downUntil: 0, downMs: this.o.downMsMin }));
    this.current = Math.floor(this.random() * this.list.length);
  }

  private merge(m: Membership): void {
    const currentUrl = this.list[this.current]?.url;
    const byUrl = new Map(this.list.map((e) => [e.url, e] as const));
    const next: Endpoint[] = this.list.filter((e) => e.seed);
    for (const mem of m.members) {
      const url = normalizeUrl(mem.url);
      const old = byUrl.get(url);
      if (old) {
        old.id = mem.id;
        if (!old.seed) next.push(old);
      } else {
        next.push({ url, id: mem.id, seed: false, downUntil: 0, downMs: this.o.downMsMin });
      }
    }
    this.list = next;
    const i = next.findIndex((e) => e.url === currentUrl);
    this.current = i >= 0 ? i : 0;
    this.leader = m.leader;
  }
}
