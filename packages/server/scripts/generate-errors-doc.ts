// Writes docs/errors.md from the error-code table.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderErrorsDoc } from "../src/http/errors-doc.js";

const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/errors.md");
fs.writeFileSync(target, renderErrorsDoc());
console.log(`wrote ${path.relative(process.cwd(), target)}`);
