// Loaded into a dsync node with NODE_OPTIONS="--import tsx --import <this file>" (node does
// not allow --cpu-prof in NODE_OPTIONS, and a profile of the whole life of a node would mix
// start-up and every setting). SIGUSR2 starts V8's sampling profiler; the next SIGUSR2 stops
// it and writes `<DSYNC_CPU_PROF_DIR>/<pid>-<n>.cpuprofile` (open it in Chrome DevTools or
// speedscope). The benchmark signals the nodes around one setting, so the profile covers it.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

/** Sampling interval of the profiler, µs (V8's default is 1000). */
const SAMPLE_INTERVAL_US = 500;

const dir = process.env.DSYNC_CPU_PROF_DIR;
if (dir !== undefined && dir !== '') {
  const session = new Session();
  session.connect();
  let running = false;
  let written = 0;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      session.post('Profiler.setSamplingInterval', { interval: SAMPLE_INTERVAL_US }, () => {
        session.post('Profiler.enable', () => session.post('Profiler.start'));
      });
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, res) => {
      if (err !== null) {
        process.stderr.write(`cpu profile: ${err.message}\n`);
        return;
      }
      written++;
      writeFileSync(join(dir, `${process.pid}-${written}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
