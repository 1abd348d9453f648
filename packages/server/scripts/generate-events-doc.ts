// Writes docs/events.md from the event-type table.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderEventsDoc } from "../src/domain/event-types.js";

const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../docs/events.md");
fs.writeFileSync(target, renderEventsDoc());
console.log(`wrote ${path.relative(process.cwd(), target)}`);
