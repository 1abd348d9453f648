// Keyed hashes for credentials (D9): HMAC-SHA256 under a key derived from the master key. License
// keys and management tokens are stored and looked up only by this hash; without the master key a
// leaked database cannot be used to test guesses offline.
import { createHmac } from "node:crypto";
import { deriveKey } from "./master-key.js";

export class CredentialHasher {
  readonly #key: Buffer;
  constructor(master: Buffer) {
    this.#key = deriveKey(master, "credential-hash");
  }
  hash(credential: string): string {
    return createHmac("sha256", this.#key).update(credential, "utf8").digest("hex");
  }
}
