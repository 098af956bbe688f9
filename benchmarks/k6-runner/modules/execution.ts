// The `k6/execution` module: who is running (vu, scenario), read from the VU's async context.
import { runtime } from '../runtime.js';

const vu = {
  get idInTest(): number { return runtime().current().vu; },
  get idInInstance(): number { return runtime().current().vu; },
  get iterationInScenario(): number { return runtime().current().iterationInScenario; },
  get iterationInInstance(): number { return runtime().current().iterationInTest; },
};

const scenario = {
  get name(): string { return runtime().current().scenario; },
  get executor(): string { return runtime().current().executor; },
  get iterationInTest(): number { return runtime().current().iterationInTest; },
  get iterationInInstance(): number { return runtime().current().iterationInTest; },
};

export default { vu, scenario };
export { scenario, vu };
