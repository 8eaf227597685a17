// Prints, as JSON, what Drizzle ORM itself reads from the compiled module ./out/schema.js:
// every table's columns (with the SQL type Drizzle would write), keys, checks and indexes.
"use strict";
const { is } = require("drizzle-orm");
const { PgTable, getTableConfig } = require("drizzle-orm/pg-core");
const schema = require("./out/schema.js");

const names = (columns) => columns.map((column) => column.name ?? null);
const tables = Object.entries(schema)
  .filter(([, value]) => is(value, PgTable))
  .map(([variable, table]) => {
    const config = getTableConfig(table);
    return {
      variable,
      schema: config.schema ?? "public",
      name: config.name,
      columns: config.columns.map((column) => ({
        name: column.name,
        type: column.getSQLType(),
        notNull: column.notNull,
        hasDefault: column.hasDefault,
        primary: column.primary,
      })),
      primaryKeys: config.primaryKeys.map((key) => ({ name: key.getName(), columns: names(key.columns) })),
      foreignKeys: config.foreignKeys.map((key) => {
        const reference = key.reference();
        const target = getTableConfig(reference.foreignTable);
        return {
          name: key.getName(),
          columns: names(reference.columns),
          target: `${target.schema ?? "public"}.${target.name}`,
          targetColumns: names(reference.foreignColumns),
          onDelete: key.onDelete ?? "no action",
          onUpdate: key.onUpdate ?? "no action",
        };
      }),
      uniques: config.uniqueConstraints.map((key) => ({ name: key.getName(), columns: names(key.columns) })),
      checks: config.checks.map((check) => check.name),
      indexes: config.indexes.map((index) => ({
        name: index.config.name,
        unique: index.config.unique,
        method: index.config.method ?? "btree",
        columns: names(index.config.columns),
      })),
    };
  });
process.stdout.write(JSON.stringify(tables));
