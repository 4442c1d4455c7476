// Text rendering helpers shared by commands: versions, times and aligned tables.
import { escapeText } from '../escape.js';
import { COLOUR_CODE, type Output } from './output.js';
import type { VersionInfo } from '../engine/types.js';

export { escapeText };

/** 12 characters on a terminal (people), the full hash when piped (scripts can use it). */
export function shortVersion(out: Output, version: string): string {
  return out.isTTY ? version.slice(0, 12) : version;
}

export function relativeTime(iso: string, now = Date.now()): string {
  const ms = now - Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const s = Math.round(ms / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h}h ago`;
  return `${Math.round(h / 24)}d ago`;
}

/** A time for people on a terminal, the exact RFC 3339 value when piped. */
export function when(out: Output, iso: string): string {
  return out.isTTY ? relativeTime(iso) : iso;
}

export function visibleLength(s: string): number {
  return s.replace(COLOUR_CODE, '').length;
}

/** A version's state for people: `routed`, `ramping 10%`, `draining`, `drained`, coloured. */
export function stateText(out: Output, v: Pick<VersionInfo, 'state' | 'ramp_percent'>): string {
  const { c } = out;
  switch (v.state) {
    case 'routed':
      return c.green('routed');
    case 'ramping':
      return c.magenta(`ramping ${v.ramp_percent}%`);
    case 'draining':
      return c.yellow('draining');
    default:
      return c.dim(v.state);
  }
}

/** The NOTE column of version tables: rollback target and the author's label. */
export function versionNote(out: Output, v: Pick<VersionInfo, 'rollback_target' | 'label'> & Partial<Pick<VersionInfo, 'source' | 'internal' | 'package_types' | 'workflow_type'>>): string {
  const notes: string[] = [];
  if (v.source === 'startup') notes.push(out.c.magenta('startup (serve --package)'));
  if (v.internal) notes.push('internal');
  if (v.package_types && v.package_types.length > 1 && v.package_types[0] !== v.workflow_type) notes.push(`of package ${v.package_types[0]}`);
  if (v.rollback_target) notes.push(out.c.blue('rollback target'));
  if (v.label) notes.push(v.label);
  return notes.join(' · ');
}

/** The version table of `versions` and `top`. */
export function versionsTable(out: Output, versions: readonly VersionInfo[]): string {
  return table(
    out,
    ['TYPE', 'VERSION', 'STATE', 'LIVE', 'RECOVERABLE', 'CHILDREN', 'LOADED', 'NOTE'],
    versions.map((v) => [
      v.workflow_type,
      out.c.cyan(shortVersion(out, v.version)),
      stateText(out, v),
      String(v.pins.live),
      String(v.pins.recoverable),
      String(v.pins.recorded_children),
      when(out, v.loaded_at),
      versionNote(out, v),
    ]),
  );
}

/**
 * Left-aligned columns separated by two spaces; the header row is dimmed on a terminal.
 * Cells are escaped whole (a line feed in a workflow id shows as \n), colour codes kept.
 */
export function table(out: Output, header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map(escapeText));
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return [out.c.dim(line(header)), ...rows.map(line)].join('\n');
}
