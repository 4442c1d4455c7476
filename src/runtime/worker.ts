// The entry of a code worker thread: one CodeHost (workflow or activity mode) driven by
// messages from the engine's CodePool. Nothing here touches the store; every reply carries
// only JSON-able values. A bug here fails the request with its message; workflow code cannot
// reach this module (it runs inside the host's vm context).
import { readlinkSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { CodeHost } from './host.js';
import type { ToWorker, FromWorker } from './pool.js';

const data = workerData as { mode: 'workflow' | 'activity'; progress: SharedArrayBuffer; sourcePort: MessagePort; sourceFlag: SharedArrayBuffer };
const progress = new Int32Array(data.progress);
const sourceFlag = new Int32Array(data.sourceFlag);

/**
 * A module's source, asked of the owner synchronously (the sandbox is in the middle of a
 * require): the request goes out, this thread waits on the flag, the answer is on the port.
 */
function fetchSource(version: string, name: string): string | undefined {
  Atomics.store(sourceFlag, 0, 0);
  parentPort!.postMessage(JSON.stringify({ t: 'need', version, name } satisfies FromWorker));
  if (Atomics.wait(sourceFlag, 0, 0, 30_000) === 'timed-out') return undefined;
  const reply = receiveMessageOnPort(data.sourcePort) as { message: { source?: string } } | undefined;
  return reply?.message.source;
}
// Where the owner can read this thread's CPU time (Linux): progress[1] = the thread's id.
try {
  Atomics.store(progress, 1, Number(readlinkSync('/proc/thread-self').split('/').pop()));
} catch {
  // Elsewhere the owner bounds steps by wall-clock time.
}
const host = new CodeHost(data.mode, { onStep: () => Atomics.add(progress, 0, 1), fetchSource });
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(JSON.stringify(message));

port.on('message', (text: string) => {
  const m = JSON.parse(text) as ToWorker;
  try {
    switch (m.t) {
      case 'version':
        host.addVersion(m.version, m.names.map((name) => [name, undefined] as const));
        return;
      case 'drop-version':
        host.dropVersion(m.version);
        return;
      case 'drop-run':
        host.dropRun(m.runId);
        return;
      case 'activate':
        post({ t: 'reply', id: m.id, activation: host.activate(m.runId, m.init, m.events) });
        host.tidy();
        return;
      case 'verify':
        post({ t: 'reply', id: m.id, problem: host.verify(m.version, m.entry, m.entryFunction, m.activities) });
        return;
      case 'activity':
        void host
          .callActivity(m.version, m.entry, m.name, m.input, { log: (level, text) => post({ t: 'log', id: m.id, level, text }) })
          .then((outcome) => post({ t: 'reply', id: m.id, outcome }));
        return;
    }
  } catch (error) {
    post({ t: 'reply', id: (m as { id?: number }).id ?? -1, failure: error instanceof Error ? error.message : String(error) });
  }
});
