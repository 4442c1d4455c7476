// The `aion load` view on a terminal: each step of the load (read, validate, hash, register,
// verify entry, persist, route) with a spinner on the current one and a progress bar while a
// large archive is read. Drawn on stderr (it is progress); the result still goes to stdout.
// Imported only in the terminal branch of `aion load`.
import { useSyncExternalStore } from 'react';
import { Box, Text, render } from 'ink';
import { LOAD_STEPS, type LoadProgressDetail, type LoadStep } from '../../engine/engine.js';
import type { LoadOutcome } from '../../engine/types.js';
import type { Streams } from '../output.js';
import { Spinner } from './spinner.js';
import { escapeText } from '../../escape.js';

export const STEP_LABELS: Record<LoadStep, string> = {
  read: 'read archive',
  validate: 'validate',
  hash: 'hash modules',
  register: 'register modules',
  verify: 'verify entry',
  persist: 'persist',
  route: 'route',
};

/** Archives at least this large get a progress bar while they are read. */
export const LARGE_ARCHIVE_BYTES = 1 << 20;

type StepStatus = 'pending' | 'active' | 'done' | 'skipped' | 'failed';

export interface LoadViewState {
  archive: string;
  /** `aion serve (pid N)` when a server carries out the load (it reports no steps). */
  remote?: string;
  status: Record<LoadStep, StepStatus>;
  notes: Partial<Record<LoadStep, string>>;
  bytes?: number;
  total?: number;
  finished?: 'ok' | 'failed';
  summary?: string;
}

/** The view's state, fed by the engine's onProgress callback. */
export class LoadProgressStore {
  private state: LoadViewState;
  private readonly listeners = new Set<() => void>();

  constructor(archive: string, remote?: string) {
    const status = Object.fromEntries(LOAD_STEPS.map((s) => [s, 'pending'])) as Record<LoadStep, StepStatus>;
    this.state = { archive, remote, status, notes: {} };
  }

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
  get = () => this.state;

  private set(next: LoadViewState): void {
    this.state = next;
    for (const l of this.listeners) l();
  }

  /** A step began: every earlier step is over (done, or skipped if it never began). */
  step = (step: LoadStep, detail?: LoadProgressDetail): void => {
    const status = { ...this.state.status };
    const notes = { ...this.state.notes };
    const index = LOAD_STEPS.indexOf(step);
    for (const s of LOAD_STEPS.slice(0, index)) {
      if (status[s] === 'active') status[s] = 'done';
      else if (status[s] === 'pending') status[s] = 'skipped';
    }
    status[step] = detail?.skipped ? 'skipped' : 'active';
    if (detail?.skipped) notes[step] = detail.skipped;
    const next: LoadViewState = { ...this.state, status, notes };
    if (detail?.total !== undefined) {
      next.total = detail.total;
      next.bytes = detail.bytes ?? 0;
    }
    this.set(next);
  };

  finish(outcome: LoadOutcome): void {
    const status = { ...this.state.status };
    for (const s of LOAD_STEPS) {
      if (status[s] === 'active') status[s] = 'done';
      else if (status[s] === 'pending') status[s] = this.state.remote && !outcome.dry_run ? 'done' : 'skipped';
    }
    const notes = { ...this.state.notes };
    if (outcome.dry_run) {
      notes.persist ??= 'dry run';
      notes.route ??= 'dry run';
      if (status.persist !== 'done') status.persist = 'skipped';
      status.route = 'skipped';
    } else if (outcome.routed === false) {
      notes.route = 'not routed: --no-route';
      status.route = 'skipped';
    } else if (!outcome.route_changed) {
      notes.route = 'unchanged';
    }
    this.set({ ...this.state, status, notes, finished: 'ok' });
  }

  fail(): void {
    const status = { ...this.state.status };
    for (const s of LOAD_STEPS) if (status[s] === 'active') status[s] = 'failed';
    if (!LOAD_STEPS.some((s) => status[s] === 'failed')) {
      const first = LOAD_STEPS.find((s) => status[s] === 'pending');
      if (first) status[first] = 'failed';
    }
    this.set({ ...this.state, status, finished: 'failed' });
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function ProgressBar({ bytes, total, width = 24, color }: { bytes: number; total: number; width?: number; color: boolean }) {
  const fraction = total > 0 ? Math.min(1, bytes / total) : 1;
  const filled = Math.round(fraction * width);
  return (
    <Text>
      <Text color={color ? 'cyan' : undefined}>{'█'.repeat(filled)}</Text>
      <Text dimColor={color}>{'░'.repeat(width - filled)}</Text>
      {` ${Math.round(fraction * 100)}% ${mib(bytes)} of ${mib(total)}`}
    </Text>
  );
}

function StepLine({ step, state, color }: { step: LoadStep; state: LoadViewState; color: boolean }) {
  const status = state.status[step];
  const note = state.notes[step];
  const mark =
    status === 'active' ? (
      <Spinner color={color} />
    ) : status === 'done' ? (
      <Text color={color ? 'green' : undefined}>✓</Text>
    ) : status === 'failed' ? (
      <Text color={color ? 'red' : undefined}>✗</Text>
    ) : status === 'skipped' ? (
      <Text dimColor={color}>–</Text>
    ) : (
      <Text dimColor={color}>·</Text>
    );
  const showBar = step === 'read' && status === 'active' && state.total !== undefined && state.total >= LARGE_ARCHIVE_BYTES;
  return (
    <Box>
      {mark}
      <Text dimColor={color && (status === 'pending' || status === 'skipped')}>{` ${STEP_LABELS[step]}`}</Text>
      {note ? <Text dimColor={color}>{` (${note})`}</Text> : null}
      {showBar ? (
        <Text>
          {'  '}
          <ProgressBar bytes={state.bytes ?? 0} total={state.total!} color={color} />
        </Text>
      ) : null}
    </Box>
  );
}

export function LoadView({ store, color }: { store: LoadProgressStore; color: boolean }) {
  const state = useSyncExternalStore(store.subscribe, store.get, store.get);
  return (
    <Box flexDirection="column">
      <Text>
        {state.finished === undefined ? <Spinner color={color} /> : state.finished === 'ok' ? <Text color={color ? 'green' : undefined}>✓</Text> : <Text color={color ? 'red' : undefined}>✗</Text>}
        <Text bold={color}>{` load ${escapeText(state.archive)}`}</Text>
        {state.remote ? <Text dimColor={color}>{` via ${state.remote}`}</Text> : null}
      </Text>
      {LOAD_STEPS.map((step) => (
        <Box key={step} marginLeft={2}>
          <StepLine step={step} state={state} color={color} />
        </Box>
      ))}
    </Box>
  );
}

/**
 * Draws the view on stderr and returns its store and a `close` that leaves the final frame on
 * screen. The caller feeds the store from the engine's onProgress.
 */
export function startLoadView(streams: Streams, options: { archive: string; remote?: string; color: boolean }) {
  const store = new LoadProgressStore(options.archive, options.remote);
  const instance = render(<LoadView store={store} color={options.color} />, {
    stdout: streams.stderr as NodeJS.WriteStream,
    stderr: streams.stderr as NodeJS.WriteStream,
    ...(streams.stdin ? { stdin: streams.stdin as NodeJS.ReadStream } : {}),
    patchConsole: false,
    exitOnCtrlC: false,
  });
  return {
    store,
    async close(): Promise<void> {
      // Let the last state reach the screen, then unmount (ink keeps the last frame).
      await new Promise((resolve) => setTimeout(resolve, 20));
      instance.unmount();
      await instance.waitUntilExit().catch(() => {});
    },
  };
}
