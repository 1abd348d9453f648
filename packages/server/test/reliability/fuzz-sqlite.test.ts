// Hostile-input fuzzing on SQLite (the suite is in fuzz-suite.ts).
import { fuzzSuites } from "./fuzz-suite.js";

fuzzSuites("sqlite");
