import { getTableColumns, getTableName } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";

/**
 * Rows read and written on the raw connection, in drizzle's shape. A
 * drizzle `get` maps every column of a row through its column object, and
 * an insert's `returning()` reads back what the caller just gave it: on the
 * webhook path (a trigger written, two deployments read per push) those were
 * a large share of the server's CPU per request. That mapping is the
 * identity for this schema's plain text and integer columns, so the hot
 * statements are prepared on better-sqlite3 directly, with the column list
 * taken from the drizzle table: a column added to schema.ts is read here
 * too. A column that drizzle would convert (a timestamp, boolean or JSON
 * mode) or that has a default would make these rows differ from drizzle's,
 * so the helpers refuse such a table at start-up.
 */
function plainColumns(table: SQLiteTable): Array<{ key: string; name: string }> {
  return Object.entries(getTableColumns(table)).map(([key, column]) => {
    if (column.columnType !== "SQLiteText" && column.columnType !== "SQLiteInteger") {
      throw new Error(`${getTableName(table)}.${column.name} is ${column.columnType}: raw-rows.ts reads plain text and integer columns only`);
    }
    if (column.hasDefault) throw new Error(`${getTableName(table)}.${column.name} has a default: raw-rows.ts cannot know the value written`);
    return { key, name: column.name };
  });
}

/** `col as "key", …`: every column of the table (or those of `keys`) under drizzle's property names, for `select … from <table>`. */
export function selectList(table: SQLiteTable, keys?: readonly string[]): string {
  const columns = plainColumns(table);
  for (const key of keys ?? []) columnName(table, key); // throws for a name the table has not
  return columns
    .filter(({ key }) => !keys || keys.includes(key))
    .map(({ key, name }) => (key === name ? `"${name}"` : `"${name}" as "${key}"`))
    .join(", ");
}

/**
 * The row an insert of `values` writes, as `select *` would read it back:
 * every column, null where no value was given (the columns have no
 * defaults). For an insert run without `returning()`.
 */
export function writtenRow(table: SQLiteTable): <T>(values: Record<string, unknown>) => T {
  const keys = plainColumns(table).map((c) => c.key);
  return <T>(values: Record<string, unknown>) => {
    const row: Record<string, unknown> = {};
    for (const key of keys) row[key] = values[key] ?? null;
    return row as T;
  };
}

/** The SQL name of a table's column, by its drizzle property name; throws for a name the table has not. */
export function columnName(table: SQLiteTable, key: string): string {
  const column = getTableColumns(table)[key];
  if (!column) throw new Error(`${getTableName(table)} has no column ${key}`);
  return column.name;
}
