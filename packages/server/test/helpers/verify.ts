// Verifies runtime answers exactly the way the official LicenseKit SDK does: WebCrypto Ed25519 over
// TextEncoder().encode(JSON.stringify(body.data)), with the key from /api/v1/system/public-keys
// chosen by signature.kid, accepting only alg "Ed25519" and key algorithm "Ed25519".
import { webcrypto } from "node:crypto";

export interface PublicKeyEntry {
  kid: string;
  algorithm: string;
  public_key: string;
  status: string;
}

// biome-ignore lint/suspicious/noExplicitAny: parsed response bodies
export async function sdkVerify(body: any, keys: PublicKeyEntry[], field: "data" | "error" = "data"): Promise<boolean> {
  const sig = body?.signature;
  if (sig?.alg !== "Ed25519") return false;
  const key = keys.find((k) => k.kid === sig.kid);
  if (key?.algorithm !== "Ed25519") return false;
  const cryptoKey = await webcrypto.subtle.importKey("raw", Buffer.from(key.public_key, "base64"), { name: "Ed25519" }, false, ["verify"]);
  return webcrypto.subtle.verify("Ed25519", cryptoKey, Buffer.from(sig.value, "base64"), new TextEncoder().encode(JSON.stringify(body[field])));
}
