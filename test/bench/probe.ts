// Preloaded into a benchmarked child (`node --import probe.js …`): when the child exits,
// writes its peak resident set size (kilobytes, process.resourceUsage().maxRSS) to the file
// named by AION_BENCH_RSS_OUT. Does nothing without that variable (e.g. under `node --test`).
import { writeFileSync } from 'node:fs';

const out = process.env.AION_BENCH_RSS_OUT;
if (out) {
  process.on('exit', () => {
    writeFileSync(out, String(process.resourceUsage().maxRSS));
  });
}
