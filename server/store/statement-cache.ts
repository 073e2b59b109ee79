import { sql, type Placeholder } from "drizzle-orm";

/**
 * Drizzle builds the SQL and SQLite prepares it on every call of a query
 * builder: about 150 µs for a `deployments` row, which made those two steps
 * most of a webhook's cost (23 statements: `npm run bench`, scenario 1).
 * The hot queries are therefore prepared once and run with placeholders;
 * statements whose shape depends on the values (an insert without the
 * optional columns, an update of some columns) are prepared once per shape.
 */
export function createStatementCache() {
  const cache = new Map<string, unknown>();
  return <T>(key: string, build: () => T): T => {
    let statement = cache.get(key) as T | undefined;
    if (statement === undefined) {
      statement = build();
      cache.set(key, statement);
    }
    return statement;
  };
}

/** The values without undefined ones: drizzle leaves those columns out, and so must the statement's shape. */
export function definedValues<T extends object>(values: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/** One named placeholder per key, for `.values()` or `.set()` of a prepared statement. */
export function placeholdersFor(values: Record<string, unknown>): Record<string, Placeholder> {
  return Object.fromEntries(Object.keys(values).map((k) => [k, sql.placeholder(k)]));
}

/** A cache key naming a statement and the columns it was built for. */
export function shapeKey(name: string, values: Record<string, unknown>): string {
  return `${name}:${Object.keys(values).sort().join(",")}`;
}
