// Which database engines the suite runs on: SQLite always; PostgreSQL too when
// LICENSEKIT_TEST_DATABASE_URL points at a server (each test file gets its own database).
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";

export type TestEngine = "sqlite" | "postgres";

export const ENGINES: TestEngine[] = process.env.LICENSEKIT_TEST_DATABASE_URL ? ["sqlite", "postgres"] : ["sqlite"];

export interface TestDatabase {
  engine: TestEngine;
  url: string;
  /** Directory for the SQLite file and the master key file. */
  dir: string;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.LICENSEKIT_TEST_DATABASE_URL;
  if (!url) throw new Error("LICENSEKIT_TEST_DATABASE_URL is not set");
  return url;
}

export function pgUrlFor(database: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

/** A fresh, empty database: a new SQLite file in a temp dir, or a new PostgreSQL database. */
export async function createTestDatabase(engine: TestEngine): Promise<TestDatabase> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-test-"));
  if (engine === "sqlite") {
    return {
      engine,
      url: `sqlite:${path.join(dir, "licensekit.db")}`,
      dir,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `lk_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    engine,
    url: pgUrlFor(name),
    dir,
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
