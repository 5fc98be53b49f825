// Reading JSON-lines files (history.jsonl, nemesis.jsonl): one JSON object per line, a trailing
// newline allowed, every other problem a MalformedLineError naming the file and line.

import { MalformedLineError } from './errors';

/** The lines of `text` with their 1-based numbers (a final empty line after a trailing newline dropped, CRs stripped). */
export function jsonlLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => l.replace(/\r$/, ''));
}

/** A constructor of the errors of one line. */
export function lineErrors(file: string, line: number): (problem: string, cause?: unknown) => MalformedLineError {
  return (problem, cause) => new MalformedLineError(file, line, problem, cause === undefined ? undefined : { cause });
}

/** Parses one line that must hold a JSON object. */
export function parseObjectLine(file: string, text: string, line: number): Record<string, unknown> {
  const bad = lineErrors(file, line);
  if (text.trim() === '') throw bad('empty line');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`, e);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('not a JSON object');
  return parsed as Record<string, unknown>;
}
