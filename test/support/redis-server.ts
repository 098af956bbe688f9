// Integration tests start a real redis-server the same way the benchmarks do: one helper,
// so both agree on ports, temp dirs and cleanup (also on Ctrl-C).
export { pingRedis, startRedis } from '../../benchmarks/lib/redis-server.js';
export type { RedisOptions, RedisServer } from '../../benchmarks/lib/redis-server.js';
