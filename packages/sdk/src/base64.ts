// Standard base64 (RFC 4648 §4: alphabet A–Z a–z 0–9 + /, "=" padding) without Node's Buffer, so the
// SDK runs unchanged on Node, Deno, Bun and browsers. Decoding is strict and canonical: the padding
// must be right and the unused low bits of the last character must be zero, so two different strings
// never decode to the same bytes (a one-character change of a signature is always a change of bytes).

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const LOOKUP: Int16Array = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/** Raised for a string that is not canonical standard base64. */
export class Base64Error extends Error {
  override name = "Base64Error";
}

function sextet(s: string, i: number): number {
  const c = s.charCodeAt(i);
  const v = c < 128 ? LOOKUP[c]! : -1;
  if (v < 0) throw new Base64Error(`invalid base64 character at offset ${i}`);
  return v;
}

/** Decodes canonical standard base64 with padding; throws Base64Error on anything else. */
export function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  if (typeof s !== "string") throw new Base64Error("base64 input is not a string");
  if (s.length % 4 !== 0) throw new Base64Error("base64 length is not a multiple of 4");
  let pad = 0;
  if (s.endsWith("==")) pad = 2;
  else if (s.endsWith("=")) pad = 1;
  const outLen = (s.length / 4) * 3 - pad;
  const out = new Uint8Array(outLen);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const last = i + 4 === s.length;
    const a = sextet(s, i);
    const b = sextet(s, i + 1);
    if (last && pad === 2) {
      if ((b & 0x0f) !== 0) throw new Base64Error("non-canonical base64 (unused bits set)");
      out[o++] = (a << 2) | (b >> 4);
      break;
    }
    const c = sextet(s, i + 2);
    if (last && pad === 1) {
      if ((c & 0x03) !== 0) throw new Base64Error("non-canonical base64 (unused bits set)");
      out[o++] = (a << 2) | (b >> 4);
      out[o++] = ((b & 0x0f) << 4) | (c >> 2);
      break;
    }
    const d = sextet(s, i + 3);
    out[o++] = (a << 2) | (b >> 4);
    out[o++] = ((b & 0x0f) << 4) | (c >> 2);
    out[o++] = ((c & 0x03) << 6) | d;
  }
  return out;
}

/** Encodes bytes as standard base64 with padding. */
export function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + "==";
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + "=";
  }
  return out;
}
