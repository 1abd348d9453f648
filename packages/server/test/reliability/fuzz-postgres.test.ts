// Hostile-input fuzzing on PostgreSQL when LICENSEKIT_TEST_DATABASE_URL is set (the suite is in fuzz-suite.ts).
import { describe, it } from "node:test";
import { ENGINES } from "../helpers/engines.js";
import { fuzzSuites } from "./fuzz-suite.js";

if (ENGINES.includes("postgres")) fuzzSuites("postgres");
else describe("hostile input: fuzzing every route [postgres]", () => it("needs LICENSEKIT_TEST_DATABASE_URL", { skip: "SQLite-only run" }, () => {}));
