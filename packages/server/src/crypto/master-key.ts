// The master key (D4): from LICENSEKIT_MASTER_KEY, or a 0600 key file in the data directory that is
// created on first start. Every other server secret is derived from it with HKDF, so there is one
// thing to back up. A check value stored in the database catches a wrong key at start-up instead of
// at the first failed decryption.
import { createHmac, hkdfSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseMasterKey } from "../config.js";
import { secretsEqual } from "./constant-time.js";

export const MASTER_KEY_FILE = "master.key";

export function loadOrCreateMasterKey(configured: Buffer | undefined, dataDir: string): { key: Buffer; source: string } {
  if (configured) return { key: configured, source: "LICENSEKIT_MASTER_KEY" };
  const file = path.join(dataDir, MASTER_KEY_FILE);
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    return { key: parseMasterKey(text, file), source: file };
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    fs.writeFileSync(file, `${key.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      return { key: parseMasterKey(fs.readFileSync(file, "utf8"), file), source: file };
    }
    throw err;
  }
  return { key, source: file };
}

/** A 32-byte subkey for one purpose. */
export function deriveKey(master: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), `licensekit/${purpose}/v1`, 32));
}

/** The value stored in `settings` so a later start can tell whether it has the same master key. */
export function masterKeyCheck(master: Buffer): string {
  return createHmac("sha256", deriveKey(master, "master-key-check")).update("licensekit").digest("hex");
}

export function masterKeyMatches(master: Buffer, stored: string): boolean {
  return secretsEqual(masterKeyCheck(master), stored);
}
