// IP and CIDR parsing for API-key `allowed_cidrs` and trusted proxies, on node's BlockList.
import net from "node:net";

export interface Cidr {
  family: "ipv4" | "ipv6";
  address: string;
  prefix: number;
}

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128). Returns null when invalid. */
export function parseCidr(text: string): Cidr | null {
  const [addr, prefixText, extra] = text.trim().split("/");
  if (extra !== undefined || !addr) return null;
  const version = net.isIP(addr);
  if (version === 0) return null;
  const family = version === 4 ? "ipv4" : "ipv6";
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return null;
    prefix = Number(prefixText);
    if (prefix > max) return null;
  }
  return { family, address: addr, prefix };
}

/** Strips the IPv4-mapped IPv6 form (::ffff:1.2.3.4) so IPv4 rules match dual-stack sockets. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export function buildBlockList(cidrs: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const text of cidrs) {
    const c = parseCidr(text);
    if (c) list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}

export function ipAllowed(ip: string, cidrs: readonly string[]): boolean {
  if (cidrs.length === 0) return true;
  const addr = normalizeIp(ip);
  const version = net.isIP(addr);
  if (version === 0) return false;
  return buildBlockList(cidrs).check(addr, version === 4 ? "ipv4" : "ipv6");
}
