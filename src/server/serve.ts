// The serving loop of `aion serve`: open the state directory, recover every active run (each
// becomes a live run of this process), fire timers as they fall due, and stop on SIGINT or
// SIGTERM (closing the shutdown gate, waiting for operations in flight) or, with untilIdle,
// once no run can progress without a new signal.
import { Engine } from '../engine/engine.js';
import type { HolderInfo } from '../store/holder.js';

export interface ServeOptions {
  stateDir: string;
  lockTimeoutMs: number;
  untilIdle: boolean;
  onWarning?: (message: string) => void;
  onInfo?: (message: string) => void;
  onWait?: (holder: HolderInfo | undefined) => void;
  /** Called once the engine is up (the control socket, when there is one, listens). */
  onReady?: (engine: Engine) => void;
}

export interface ServeSummary {
  recovered: number;
  timers_fired: number;
  still_running: number;
}

const MAX_SLEEP_MS = 1000;

export async function serve(options: ServeOptions): Promise<ServeSummary> {
  const engine = await Engine.open({
    stateDir: options.stateDir,
    create: true,
    lockTimeoutMs: options.lockTimeoutMs,
    command: 'aion serve',
    onWait: options.onWait,
    onWarning: options.onWarning,
  });
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopping = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const summary: ServeSummary = { recovered: 0, timers_fired: 0, still_running: 0 };
  try {
    engine.runs.residentAll = true;
    summary.recovered = await engine.runs.recoverAll();
    options.onInfo?.(`serving ${options.stateDir}: ${summary.recovered} active run(s) recovered`);
    options.onReady?.(engine);
    while (!stopping) {
      summary.timers_fired += await engine.runs.fireDueTimers();
      const next = await engine.runs.nextTimerAt();
      if (options.untilIdle && next === undefined) break;
      const delay = next === undefined ? MAX_SLEEP_MS : Math.max(0, Math.min(MAX_SLEEP_MS, next - Date.now()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    summary.still_running = (await engine.runs.list({ status: 'running' })).length;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    engine.resident.clear();
    await engine.close();
  }
  return summary;
}
