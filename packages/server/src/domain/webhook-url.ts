// Webhook target URLs (D6): absolute http(s), no embedded credentials, and — unless the operator sets
// LICENSEKIT_WEBHOOK_ALLOW_PRIVATE=true — not `localhost` nor a literal loopback, private, link-local,
// multicast or otherwise reserved address, so the server cannot be pointed at its own network.
// Host names are not resolved here: a name that resolves to a private address must be refused by the
// delivery worker at connect time (DNS can change after the endpoint is saved).
import net from "node:net";

type Family = "ipv4" | "ipv6";

/** Address ranges a webhook may not target, with the word used in the 422 detail. */
const BLOCKED: readonly [string, number, Family, string][] = [
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "private (shared address space)"],
  ["169.254.0.0", 16, "ipv4", "link-local"],
  ["192.0.0.0", 24, "ipv4", "reserved"],
  ["198.18.0.0", 15, "ipv4", "reserved"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  ["fc00::", 7, "ipv6", "private (unique local)"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fec0::", 10, "ipv6", "site-local"],
  ["ff00::", 8, "ipv6", "multicast"],
];

const LISTS = BLOCKED.map(([address, prefix, family, kind]) => {
  const list = new net.BlockList();
  list.addSubnet(address, prefix, family);
  return { list, family, kind };
});

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail is rewritten as two groups first). */
function ipv6Groups(addr: string): number[] | null {
  const text = addr.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) => {
    const hex = (x: string, y: string) => ((Number(x) << 8) | Number(y)).toString(16);
    return `${hex(a, b)}:${hex(c, d)}`;
  });
  const parts = text.split("::");
  if (parts.length > 2) return null;
  const parse = (s: string | undefined) => (s ? s.split(":").map((x) => Number.parseInt(x, 16)) : []);
  const head = parse(parts[0]);
  if (parts.length === 1) return head.length === 8 ? head : null;
  const tail = parse(parts[1]);
  const fill = 8 - head.length - tail.length;
  return fill < 0 ? null : [...head, ...new Array<number>(fill).fill(0), ...tail];
}

/** The IPv4 address carried inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible or NAT64 (64:ff9b::/96) address. */
function embeddedIpv4(addr: string): string | null {
  const g = ipv6Groups(addr);
  if (!g || g.some((x) => Number.isNaN(x))) return null;
  const v4 = () => `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return v4();
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4();
  if (zeros(0, 6) && (g[6] !== 0 || g[7]! > 1)) return v4();
  return null;
}

/** "loopback", "private", … when `host` is a literal address in a blocked range; null otherwise. */
export function blockedAddressKind(host: string): string | null {
  const version = net.isIP(host);
  if (version === 0) return null;
  if (version === 6) {
    const inner = embeddedIpv4(host);
    if (inner) return blockedAddressKind(inner);
  }
  const family: Family = version === 4 ? "ipv4" : "ipv6";
  for (const { list, family: f, kind } of LISTS) if (f === family && list.check(host, family)) return kind;
  return null;
}

/** Why `raw` cannot be a webhook target (the text after `field url: `), or null when it can. */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute http or https URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `must use http or https, not ${url.protocol.replace(/:$/, "")}`;
  if (url.username !== "" || url.password !== "") return "must not embed credentials; deliveries are authenticated by their signature";
  // WHATWG parsing already normalised numeric IPv4 spellings (127.1, 0x7f.0.0.1, 2130706433).
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.$/, "").toLowerCase();
  if (host === "") return "must name a host";
  if (allowPrivate) return null;
  if (host === "localhost" || host.endsWith(".localhost")) {
    return "must not point at localhost; set LICENSEKIT_WEBHOOK_ALLOW_PRIVATE=true to allow local targets";
  }
  const kind = blockedAddressKind(host);
  if (kind) return `must not point at ${host} (${kind} address); set LICENSEKIT_WEBHOOK_ALLOW_PRIVATE=true to allow it`;
  return null;
}

/** The URL without query string or fragment, for audit metadata (a query may carry a receiver's token). */
export function urlForAudit(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.origin}${url.pathname}`;
  } catch {
    return "";
  }
}
