// Preloaded into a benchmarked child (`node --import probe.js …`): when the child exits,
// writes its peak resident set size in kilobytes to the file named by AION_BENCH_RSS_OUT. Does
// nothing without that variable (e.g. under `node --test`).
//
// On Linux the peak is VmHWM of /proc/self/status: the high-water mark of this process's own
// address space. process.resourceUsage().maxRSS is not used there: the kernel folds the peak of
// the address space a child was forked from into it at exec, so a child of a large parent (the
// benchmark runner, which has just generated and packed a 50 MB package) would report the
// parent's size, not its own. Elsewhere maxRSS is all there is.
import { readFileSync, writeFileSync } from 'node:fs';

function peakKb(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // no procfs
  }
  return process.resourceUsage().maxRSS;
}

const out = process.env.AION_BENCH_RSS_OUT;
if (out) {
  process.on('exit', () => {
    writeFileSync(out, String(peakKb()));
  });
}
