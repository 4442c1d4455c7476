// The serving loop of `aion serve`: open the state directory, recover every active run (each
// becomes a live run of this process), then listen on the control socket so every other `aion`
// command on the directory is carried out here, fire timers as they fall due, and stop on
// SIGINT or SIGTERM or, with untilIdle, once no run can progress without a new signal.
//
// Stopping: first the drain — mutations are refused (`shutting_down`), reads still answered
// while runs finish their step; then new requests are refused, the socket stops accepting and its
// file is removed, requests in flight are waited for, then the engine closes (its shutdown
// gate waits for admitted operations) and the holder file goes with it. All that waiting
// ends SOCKET_LIMITS.shutdownGraceMs after the signal: what is still running then is
// abandoned with a warning (as a crash would leave it: runs are recovered next time), and
// `onAbandoned` tells the caller to end the process, which abandoned work keeps alive.
import { AionError } from '../errors.js';
import type { PackageLimits } from '../package/types.js';
import { Engine } from '../engine/engine.js';
import { recordHolderSocket, type HolderInfo } from '../store/holder.js';
import { serverAnswers } from '../client/remote.js';
import { ControlServer, forwardingWarnings } from './control.js';
import { SOCKET_LIMITS } from './limits.js';
import { prepareSocketDir, removeStaleSocket, socketPlace } from './socket.js';

export interface ServeOptions {
  stateDir: string;
  /** A shared store (postgres://…): serve as one worker of a fleet (server/fleet.ts). */
  store?: string;
  lockTimeoutMs: number;
  untilIdle: boolean;
  onWarning?: (message: string) => void;
  onInfo?: (message: string) => void;
  onWait?: (holder: HolderInfo | undefined) => void;
  /** Called once the control socket listens (its path is in the holder file from then on). */
  onListening?: (socketPath: string) => void;
  /** Called once the engine is up and the control socket listens. */
  onReady?: (engine: Engine) => void;
  /** Runs whose workflow code stays resident between activations, at most. */
  maxResident?: number;
  /**
   * Startup packages (`serve --package`): loaded at boot, before any run is recovered, in
   * memory only; each routes its non-internal types while this server runs. One that does
   * not load stops the server before it listens (the load's error).
   */
  packages?: readonly string[];
  /** Archive limits for the startup packages. */
  limits?: Partial<PackageLimits>;
  /**
   * Called when shutdown gave up waiting (past its grace period) on work still running: the
   * summary is still returned, and the caller should then exit the process.
   */
  onAbandoned?: () => void;
}

export interface ServeSummary {
  recovered: number;
  timers_fired: number;
  still_running: number;
}

const MAX_SLEEP_MS = 1000;
const BUSY_RETRY_MS = 20;

export async function serve(options: ServeOptions): Promise<ServeSummary> {
  const engine = await Engine.open({
    stateDir: options.stateDir,
    store: options.store,
    worker: 'serve',
    create: true,
    lockTimeoutMs: options.lockTimeoutMs,
    command: 'aion serve',
    maxResident: options.maxResident,
    onWait: options.onWait,
    // A warning raised while serving a request also travels back with its reply.
    onWarning: forwardingWarnings(options.onWarning),
    // Another server on this directory: refuse now rather than wait out the lock timeout.
    whileWaiting: async (holder) => {
      if (holder?.socket && (await serverAnswers(options.stateDir, holder))) {
        throw new AionError('state_busy', `state directory ${options.stateDir} is already served by aion serve (pid ${holder.pid}) on ${holder.socket}`, {
          details: { state_dir: options.stateDir, holder },
          hint: `every other aion command on this directory goes to it; stop it first (kill -TERM ${holder.pid}) to serve it here`,
        });
      }
    },
  });
  for (const file of options.packages ?? []) {
    try {
      const loaded = await engine.loadStartupPackage(file, options.limits);
      options.onInfo?.(`startup package ${file}: ${loaded.workflow_types.join(', ')} ${loaded.version.slice(0, 12)} routed while this server runs (not persisted)`);
    } catch (error) {
      await engine.close().catch(() => {});
      throw error;
    }
  }
  let stopping = false;
  /** A request was carried out since the loop last looked at the timers. */
  let dirty = false;
  let wake: (() => void) | undefined;
  let control: ControlServer | undefined;
  /** When waiting for work in flight ends: the grace period, counted from the signal. */
  let deadline: number | undefined;
  const stop = () => {
    stopping = true;
    deadline ??= Date.now() + SOCKET_LIMITS.shutdownGraceMs;
    // The drain: reads are still answered while runs finish their step; mutations refused.
    control?.drain();
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const summary: ServeSummary = { recovered: 0, timers_fired: 0, still_running: 0 };
  let stopFleet: (() => void) | undefined;
  try {
    engine.runs.residentAll = true;
    if (engine.fleet) stopFleet = await (await import('./fleet.js')).startFleetWorker(engine, options.onWarning);
    // Recovered runs advance in the background: a long activity must not delay listening.
    summary.recovered = await engine.runs.recoverAll({ wait: false });
    engine.runs.onTaskDone = () => {
      dirty = true;
      wake?.();
    };
    if (!stopping && !engine.fleet) {
      const place = socketPlace(options.stateDir);
      prepareSocketDir(place.dir);
      await removeStaleSocket(place.path);
      control = await ControlServer.listen({
        engine,
        stateDir: options.stateDir,
        socketPath: place.path,
        onRequestDone: () => {
          dirty = true;
          wake?.();
        },
      });
      try {
        recordHolderSocket(options.stateDir, place.path);
      } catch (error) {
        throw new AionError('store', `cannot record the control socket in the holder file of ${options.stateDir}: ${(error as Error).message}`, { cause: error });
      }
      if (stopping) control.drain();
      options.onListening?.(place.path);
    }
    if (engine.fleet) options.onListening?.(`worker ${engine.fleet.id}`);
    options.onInfo?.(`serving ${engine.fleet ? `as worker ${engine.fleet.id}` : options.stateDir}: ${summary.recovered} active run(s) recovered`);
    options.onReady?.(engine);
    while (!stopping) {
      dirty = false;
      await engine.runs.fireDueTimers(Date.now(), { wait: false });
      const next = await engine.runs.nextTimerAt();
      if (options.untilIdle && next === undefined && !dirty && engine.runs.idle) break;
      if (dirty) continue;
      // A due timer of a busy run is fired by that run's own task: look again shortly.
      const delay = next === undefined ? MAX_SLEEP_MS : Math.max(BUSY_RETRY_MS, Math.min(MAX_SLEEP_MS, next - Date.now()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    // Runs in the middle of a step finish it first (within the shutdown grace): what they end
    // with is what we report.
    const settleBy = (deadline ??= Date.now() + SOCKET_LIMITS.shutdownGraceMs);
    let settleTimer: NodeJS.Timeout | undefined;
    await Promise.race([engine.runs.settle(), new Promise<void>((resolve) => (settleTimer = setTimeout(resolve, Math.max(0, settleBy - Date.now()))))]);
    clearTimeout(settleTimer);
    summary.timers_fired = engine.runs.timersFired;
    summary.still_running = (await engine.runs.list({ status: 'running' })).length;
  } finally {
    stopFleet?.();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    const until = (deadline ??= Date.now() + SOCKET_LIMITS.shutdownGraceMs);
    await control?.close(until);
    const requests = control?.inFlightCount ?? 0;
    engine.live.clear();
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      engine.close().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, until - Date.now())))),
    ]);
    clearTimeout(timer);
    if (requests > 0 || !closed) {
      const grace = `${SOCKET_LIMITS.shutdownGraceMs / 1000}s`;
      options.onWarning?.(
        `shutdown: ${requests} request(s) still in flight after ${grace} (the shutdown grace period)${closed ? '' : ' and the engine still busy'}; ` +
          'abandoned as a crash would leave them: active runs are recovered by the next aion serve or command, and aion doctor checks the state directory',
      );
      if (!closed) options.onAbandoned?.();
    }
  }
  return summary;
}
