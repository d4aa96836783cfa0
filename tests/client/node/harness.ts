// What every Node scenario of the TypeScript SDK tests shares: one JSON object per line on stdout, failures
// collected and reported in the last line ({"event":"done","failures":[...]}), and the SDK watched: anything it
// logs as an error or a warning, an unhandled rejection or exception, or the time running out is a failure.
export const failures: string[] = [];

export function emit(event: string, fields: Record<string, unknown> = {}): void {
  const text = JSON.stringify({ event, ...fields }, (_key, value) => (typeof value === 'bigint' ? value.toString() : value));
  process.stdout.write(text + '\n');
}

export function fail(why: string): void {
  failures.push(why);
  emit('failure', { why });
}

export function finish(): void {
  emit('done', { failures });
  process.exit(failures.length ? 1 : 0);
}

export function watchSdk(timeoutMs = 30_000): void {
  console.log = (...args: unknown[]) => {
    const text = args.map(String).join(' ');
    if (/\b(ERROR|WARN)\b/.test(text)) fail(`SDK logged: ${text.replace(/%c/g, '').slice(0, 300)}`);
    process.stderr.write(text + '\n');
  };
  process.on('unhandledRejection', (reason: unknown) => fail(`unhandled rejection: ${String(reason)}`));
  process.on('uncaughtException', (error: Error) => fail(`uncaught exception: ${error.stack ?? error}`));
  setTimeout(() => {
    fail(`timed out after ${timeoutMs} ms`);
    finish();
  }, timeoutMs).unref();
}
