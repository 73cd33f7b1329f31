/** Query parameters that carry a secret in database and Redis URLs. */
const SECRET_PARAMS = /^(password|pass|passwd|pwd|secret|token|sslpassword|sslkey)$/i;

/**
 * A connection URL fit for a log line: its password (in the user part or as a query parameter)
 * replaced by `***`. Parsed with `new URL()`, so an empty user (`postgres://:pw@host/db`), a
 * password holding `@` or `:` and `?password=` are all found; a URL it cannot parse is not
 * printed at all, since any part of it could be the secret.
 */
export function maskUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(an unparseable URL, not shown)';
  }
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()]) {
    if (SECRET_PARAMS.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}
