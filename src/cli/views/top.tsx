// `aion top` on a terminal: routes, versions and runs of a state directory, refreshed every
// second (through the same Client as every command: embedded, or a running aion serve).
// q or Esc quits (Ctrl+C too). Imported only in the terminal branch of `aion top`.
import { useEffect, useState } from 'react';
import { Box, Text, render, useApp, useInput } from 'ink';
import type { RunSummary, VersionInfo } from '../../engine/types.js';
import type { Output, Streams } from '../output.js';
import { escapeText, relativeTime, shortVersion, stateText, table, versionNote } from '../render.js';
import { finishText } from '../output.js';
import { statusText } from '../commands/show.js';
import { Spinner } from './spinner.js';

export interface TopSnapshot {
  versions: VersionInfo[];
  runs: RunSummary[];
  /** When it was read (ms since the epoch). */
  at: number;
  /** `embedded` or `aion serve (pid N)`. */
  via: string;
}

/** Reads one snapshot; `note` reports waits and warnings while it does. */
export type TopFetch = (note: (message: string | undefined) => void) => Promise<TopSnapshot>;

const STATUS_ORDER = ['running', 'failed', 'terminated', 'completed', 'continued_as_new'];

/** The body of the view as text (colour from `out`), sized to `rows` lines at most. */
export function renderTop(out: Output, snap: TopSnapshot, rows: number): string {
  const { c } = out;
  const now = snap.at;
  const lines: string[] = [];
  const routed = snap.versions.filter((v) => v.route_active);
  lines.push(c.bold('ROUTES'));
  if (routed.length === 0) lines.push(c.dim('  no workflow type is routed (aion load <archive>)'));
  for (const v of routed) {
    const ramp = snap.versions.find((r) => r.workflow_type === v.workflow_type && r.state === 'ramping');
    const back = snap.versions.find((r) => r.workflow_type === v.workflow_type && r.rollback_target);
    const extra = [
      v.source === 'startup' ? c.magenta('startup (serve --package)') : undefined,
      ramp ? c.magenta(`ramping ${ramp.ramp_percent}% → ${shortVersion(out, ramp.version)}`) : undefined,
      back ? c.dim(`rollback → ${shortVersion(out, back.version)}`) : undefined,
    ].filter(Boolean);
    lines.push(`  ${escapeText(v.workflow_type)} → ${c.cyan(shortVersion(out, v.version))} ${c.dim(`loaded ${relativeTime(v.loaded_at, now)}`)}${extra.length > 0 ? '  ' + extra.join(c.dim(' · ')) : ''}`);
  }
  lines.push('');
  lines.push(c.bold('VERSIONS'));
  if (snap.versions.length === 0) lines.push(c.dim('  none loaded'));
  else {
    const t = table(
      out,
      ['TYPE', 'VERSION', 'STATE', 'LIVE', 'RECOVERABLE', 'CHILDREN', 'LOADED', 'NOTE'],
      snap.versions.map((v) => [
        v.workflow_type,
        c.cyan(shortVersion(out, v.version)),
        stateText(out, v),
        String(v.pins.live),
        String(v.pins.recoverable),
        String(v.pins.recorded_children),
        relativeTime(v.loaded_at, now),
        versionNote(out, v),
      ]),
    );
    lines.push(...t.split('\n').map((l) => '  ' + l));
  }
  lines.push('');
  const counts = new Map<string, number>();
  for (const r of snap.runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const summary = STATUS_ORDER.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${statusText(out, s)}`).join(c.dim(' · '));
  lines.push(`${c.bold('RUNS')}  ${summary || c.dim('none')}`);
  if (snap.runs.length > 0) {
    const ordered = [...snap.runs].sort(
      (a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || Date.parse(b.updated_at) - Date.parse(a.updated_at),
    );
    const room = Math.max(3, rows - lines.length - 4);
    const shown = ordered.slice(0, room);
    const t = table(
      out,
      ['WORKFLOW ID', 'TYPE', 'VERSION', 'STATUS', 'UPDATED'],
      shown.map((r) => [r.workflow_id, r.workflow_type, c.cyan(shortVersion(out, r.version)), statusText(out, r.status), relativeTime(r.updated_at, now)]),
    );
    lines.push(...t.split('\n').map((l) => '  ' + l));
    if (ordered.length > shown.length) lines.push(c.dim(`  … and ${ordered.length - shown.length} more (aion runs)`));
  }
  // The view's text boundary, as Output's is for printed text.
  return finishText(lines.join('\n'));
}

export function TopView(props: { out: Output; fetch: TopFetch; intervalMs: number; stateDir: string; keyboard: boolean; rows: number }) {
  const { exit } = useApp();
  const [snap, setSnap] = useState<TopSnapshot | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [note, setNote] = useState<string | undefined>(undefined);
  const color = props.out.color;

  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      try {
        const next = await props.fetch((m) => !stopped && setNote(m));
        if (stopped) return;
        setSnap(next);
        setError(undefined);
        setNote(undefined);
      } catch (e) {
        if (!stopped) setError(e instanceof Error ? e.message : String(e));
      }
      if (!stopped) timer = setTimeout(tick, props.intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [props.fetch, props.intervalMs]);

  useInput(
    (input, key) => {
      if (input === 'q' || key.escape) exit();
    },
    { isActive: props.keyboard },
  );

  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text bold={color}>aion top</Text>
        <Text dimColor={color}>{`  ${escapeText(props.stateDir)}`}</Text>
        {snap ? <Text dimColor={color}>{`  · ${snap.via} · ${new Date(snap.at).toLocaleTimeString()}`}</Text> : null}
        {props.keyboard ? <Text dimColor={color}>{'  · q to quit'}</Text> : null}
      </Text>
      {note ? <Text color={color ? 'yellow' : undefined} wrap="truncate-end">{escapeText(note)}</Text> : null}
      {error ? <Text color={color ? 'red' : undefined} wrap="truncate-end">{`error: ${escapeText(error)}`}</Text> : null}
      {snap ? (
        <Box marginTop={1}>
          <Text wrap="truncate-end">{renderTop(props.out, snap, props.rows - 3)}</Text>
        </Box>
      ) : (
        <Text>
          <Spinner color={color} /> reading the state directory…
        </Text>
      )}
    </Box>
  );
}

/** Runs the live view until the user quits (or `signal` aborts); resolves then. */
export async function runTopView(
  streams: Streams,
  { signal, ...props }: { out: Output; fetch: TopFetch; intervalMs: number; stateDir: string; signal?: AbortSignal },
): Promise<void> {
  const stdin = (streams.stdin ?? process.stdin) as NodeJS.ReadStream;
  const keyboard = Boolean(stdin.isTTY);
  const rows = streams.stdout.rows ?? 24;
  const instance = render(<TopView {...props} keyboard={keyboard} rows={rows} />, {
    stdout: streams.stdout as NodeJS.WriteStream,
    stderr: streams.stderr as NodeJS.WriteStream,
    stdin,
    patchConsole: false,
    exitOnCtrlC: true,
  });
  signal?.addEventListener('abort', () => instance.unmount(), { once: true });
  await instance.waitUntilExit();
}
