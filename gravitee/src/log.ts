/**
 * The bridge's log: one line per event on stderr, `<ISO time> <LEVEL> <message>`. Messages never carry
 * a token, a header value or an API key value (the callers only pass names, ids and counts).
 */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function lineLog(write: (line: string) => void, now: () => Date = () => new Date()): Log {
  const line = (level: string) => (message: string) => write(`${now().toISOString()} ${level} ${message}`);
  return { info: line('INFO'), warn: line('WARN'), error: line('ERROR') };
}

/** A log that keeps its lines (tests). */
export function memoryLog(): Log & { readonly lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}
