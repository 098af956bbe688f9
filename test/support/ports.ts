// Free TCP ports on loopback, by asking the kernel. One implementation for tests and
// benchmarks: it lives with the benchmark launchers (as startRedis does).
export { freePort, freePorts } from '../../benchmarks/lib/proc.js';
