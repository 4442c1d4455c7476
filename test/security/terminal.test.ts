// Attack 4: terminal injection. Strings that users and workflow code choose — a workflow's
// thrown error, an activity's error, a child workflow id, a run's result, a -m message, a
// --reason, ids echoed in error lines — carry raw ESC/OSC/CSI, CR, LF, C1 controls, DEL and
// bidi overrides. Text output must show them escaped (`\x1b`, `\r`, `\n`, `\u202e`, ...), piped
// and on a terminal alike, while aion's own colours still reach a terminal; --json is unchanged.
// Each command runs in-process on fake streams (terminal and pipe) and through bin/aion, piped.
import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { aion, tempDir, workflowProject } from './support.js';
import { run } from '../ux/support.js';
import { Output } from '../../src/cli/output.js';
import { renderTop } from '../../src/cli/views/top.js';
import { terminal } from '../ux/support.js';

/** OSC window title, clear screen, CR, LF, bidi override, C1 CSI, DEL. */
const EVIL = 'a\x1b]0;pwned\x07b\x1b[2J\rc\nd\u202ee\x9bf\x7f';
const EVIL_JS = JSON.stringify(EVIL);
/** How text output shows it. */
const SHOWN = 'a\\x1b]0;pwned\\x07b\\x1b[2J\\rc\\nd\\u202ee\\x9bf\\x7f';
/** The part of it that JSON escaping (used for results and history details) shows alike. */
const CR_LF = '\\rc\\nd';
const CHILD_ID = 'kid\x1b[31m\nX';

const SOURCE = `
const EVIL = ${EVIL_JS};
exports.activities = { boom: async () => { throw new Error(EVIL); } };
exports.run = async (ctx, input) => {
  if (input === 'activity') return ctx.activity('boom', null);
  if (input === 'result') return EVIL;
  if (input === 'child') return ctx.child('evil', 'result', { workflowId: ${JSON.stringify(CHILD_ID)} });
  if (input === 'wait') { const s = await ctx.signal('go'); throw new Error(EVIL + s); }
  throw new Error(EVIL);
};
`;

// Raw characters text output must never contain (LF is aion's own line break).
// eslint-disable-next-line no-control-regex
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[[0-9;]*m/g;

function assertClean(label: string, text: string, colour: boolean): void {
  const rest = colour ? text.replace(SGR, '') : text;
  const bad = RAW.exec(rest);
  assert.equal(bad, null, `${label}: raw ${JSON.stringify(bad?.[0])} in ${JSON.stringify(rest.slice(Math.max(0, (bad?.index ?? 0) - 40), (bad?.index ?? 0) + 40))}`);
  if (!colour) assert.ok(!text.includes('\x1b'), `${label}: an escape code in plain output`);
  assert.ok(!/^d\u202e|^X/m.test(text), `${label}: a user string started a line of its own`);
}

let dir: string;
let cleanup: () => void;
let stateDir: string;

before(() => {
  ({ dir, cleanup } = tempDir('aion-security-tty-'));
  stateDir = path.join(dir, 'state');
  const proj = workflowProject(dir, 'evil', SOURCE, ['boom']);
  const archive = path.join(dir, 'evil.aion');
  assert.equal(aion(['pack', proj, '--out', archive]).code, 0);
  const loaded = aion(['--state-dir', stateDir, 'load', archive, '-m', EVIL, '--json']);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.equal(loaded.json.workflow_type, 'evil');
  // Runs in every shape the renderers show, prepared through --json (unchanged by escaping).
  const prep = (args: string[]) => {
    const r = aion(['--state-dir', stateDir, '--json', ...args]);
    assert.ok(r.json, r.stdout + r.stderr);
    return r;
  };
  prep(['start', 'evil', '--id', 'e-result', '--input', '"result"']);
  prep(['start', 'evil', '--id', 'e-activity', '--input', '"activity"']);
  prep(['start', 'evil', '--id', 'e-child', '--input', '"child"']);
  prep(['start', 'evil', '--id', 'e-term', '--input', '"wait"']);
  prep(['terminate', 'e-term', '--reason', EVIL]);
  const json = aion(['--state-dir', stateDir, '--json', 'show', 'e-term']);
  assert.equal(json.json.error.message, EVIL, '--json output carries the string exactly');
});

after(() => cleanup());

/** Every command that shows a user-chosen string, and what of it must appear (escaped). */
const CASES: { name: string; args: () => string[]; shows: string; pipedOnly?: boolean }[] = [
  { name: 'start (thrown error)', args: () => ['start', 'evil', '--input', '"throw"'], shows: SHOWN },
  { name: 'show (activity error)', args: () => ['show', 'e-activity'], shows: SHOWN },
  { name: 'show (result and history)', args: () => ['show', 'e-result'], shows: CR_LF },
  { name: 'show (terminate reason)', args: () => ['show', 'e-term'], shows: SHOWN },
  // A child id is validated like --id (test/security/wall.test.ts), so the hostile one is
  // refused inside the workflow and never becomes a run; the live top view is tested below.
  { name: 'show (child id refused)', args: () => ['show', 'e-child'], shows: 'ctx.child options.workflowId must be' },
  { name: 'runs', args: () => ['runs'], shows: 'e-child' },
  { name: 'top snapshot', args: () => ['top'], shows: 'e-child', pipedOnly: true },
  { name: 'history (-m message)', args: () => ['history'], shows: SHOWN },
  { name: 'signal (outcome error)', args: () => ['signal', 'e-sig', 'go', '--input', JSON.stringify(EVIL)], shows: SHOWN },
  { name: 'terminate (--reason)', args: () => ['terminate', 'e-term2', '--reason', EVIL], shows: 'terminated' },
  { name: 'error line (unknown id)', args: () => ['show', `nope${EVIL}`], shows: SHOWN },
  { name: 'error line (invalid --id)', args: () => ['start', 'evil', '--id', EVIL], shows: SHOWN },
  { name: 'error line (unknown type)', args: () => ['start', `t${EVIL}`], shows: SHOWN },
];

function freshRuns(): void {
  for (const id of ['e-sig', 'e-term2']) {
    aion(['--state-dir', stateDir, 'terminate', id]);
    const r = aion(['--state-dir', stateDir, '--json', 'start', 'evil', '--id', id, '--input', '"wait"']);
    assert.equal(r.json?.status, 'running', r.stdout + r.stderr);
  }
}

describe('text output escapes user-chosen strings', () => {
  for (const tty of [true, false]) {
    test(`in-process, ${tty ? 'on a terminal (coloured)' : 'piped'}`, async () => {
      freshRuns();
      for (const c of CASES) {
        if (tty && c.pipedOnly) continue;
        const r = await run(['--state-dir', stateDir, ...c.args()], tty);
        assertClean(`${c.name} stdout`, r.stdout, tty);
        assertClean(`${c.name} stderr`, r.stderr, tty);
        assert.ok((r.stdout + r.stderr).includes(c.shows), `${c.name}: ${JSON.stringify(c.shows)} not shown in ${JSON.stringify(r.stdout + r.stderr)}`);
      }
      // aion's own colour still reaches a terminal.
      if (tty) assert.match((await run(['--state-dir', stateDir, 'show', 'e-activity'], true)).stdout, /\x1b\[31m/);
    });
  }

  test('through bin/aion, piped', () => {
    freshRuns();
    for (const c of CASES) {
      const r = aion(['--state-dir', stateDir, ...c.args()]);
      assertClean(`${c.name} stdout`, r.stdout, false);
      assertClean(`${c.name} stderr`, r.stderr, false);
      assert.ok((r.stdout + r.stderr).includes(c.shows), `${c.name}: ${JSON.stringify(c.shows)} not shown in ${JSON.stringify(r.stdout + r.stderr)}`);
    }
  });

  test('--json output is unchanged: the exact strings, JSON-escaped', () => {
    const r = aion(['--state-dir', stateDir, '--json', 'history']);
    assert.equal(r.code, 0);
    assert.equal(r.json.history[0].message, EVIL);
    assert.ok(r.stdout.includes('\\u001b]0;pwned\\u0007'), 'JSON escapes control characters itself');
  });

  test('the live top view escapes workflow ids', () => {
    const out = new Output(terminal(true), { json: false, color: true });
    const at = new Date().toISOString();
    const text = renderTop(out, {
      versions: [],
      runs: [{ workflow_id: CHILD_ID, run_id: 'r1', workflow_type: 'evil', version: 'a'.repeat(64), status: 'running', started_at: at, updated_at: at }],
      at: Date.now(),
      via: 'embedded',
    }, 40);
    assertClean('renderTop', text, true);
    assert.ok(text.includes('kid\\x1b[31m\\nX'));
  });
});
