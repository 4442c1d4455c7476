// Parsing of --input: JSON text, or null when absent. Bad JSON is a usage error naming the flag.
import { usageError } from './output.js';

export function parseInput(text: string | undefined, flag = '--input'): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw usageError(`${flag} is not valid JSON: ${(error as Error).message}`, `quote it for the shell, e.g. ${flag} '{"name":"ada"}'`);
  }
}
