// A small terminal spinner (ink): a braille frame that turns every 80 ms.
import { useEffect, useState } from 'react';
import { Text } from 'ink';

export const SPINNER_FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function Spinner({ color = true, intervalMs = 80 }: { color?: boolean; intervalMs?: number }) {
  const [frame, setFrame] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setFrame((f) => (f + 1) % SPINNER_FRAMES.length), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return <Text color={color ? 'cyan' : undefined}>{SPINNER_FRAMES[frame]}</Text>;
}
