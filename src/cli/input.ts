// Parsing of --input: JSON text, or null when absent. Bad JSON, or JSON nested deeper than the
// engine accepts (MAX_JSON_DEPTH), is a usage error naming the flag.
import { MAX_JSON_DEPTH, jsonDepth } from '../json.js';
import { usageError } from './output.js';

export function parseInput(text: string | undefined, flag = '--input'): unknown {
  if (text === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw usageError(`${flag} is not valid JSON: ${(error as Error).message}`, `quote it for the shell, e.g. ${flag} '{"name":"ada"}'`);
  }
  if (jsonDepth(value) > MAX_JSON_DEPTH) {
    throw usageError(`${flag} nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`, 'flatten the input; deeper values cannot be stored');
  }
  return value;
}
