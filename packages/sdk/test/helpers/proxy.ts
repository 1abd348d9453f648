// A fault-injecting HTTP proxy for tests: listens on 127.0.0.1 only, forwards to a loopback server,
// and answers each request by a script (one action per request, in order; "pass" once the script is
// used up). Bounded: at most `maxRequests` requests are served (later ones get 503 and are not
// forwarded), and a "hang" holds a request at most `maxHoldMs` before its socket is destroyed.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type ProxyAction =
  /** Forward and relay the server's answer. */
  | "pass"
  /** Destroy the client's connection without forwarding (the server never sees the request). */
  | "drop"
  /** Forward, wait for the server's answer, then answer the client 503 (the server applied it; the client does not know). */
  | "forward-then-503"
  /** Forward, wait for the server's answer, then destroy the client's connection. */
  | "forward-then-drop"
  /** Never answer (until maxHoldMs, then the socket is destroyed). */
  | "hang"
  /** Answer this status without forwarding; a JSON error envelope with `code` unless `rawBody` is given. */
  | { status: number; code?: string; retryAfter?: string; rawBody?: string; contentType?: string };

export interface ProxiedRequest {
  method: string;
  url: string;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  action: ProxyAction;
  /** The server's status when the request was forwarded. */
  upstreamStatus?: number;
  at: number;
}

export interface FaultProxy {
  url: string;
  /** Appends actions for the next requests. */
  script(...actions: ProxyAction[]): void;
  /** Every request seen, in order. */
  requests: ProxiedRequest[];
  /** Forgets the log and any unused script. */
  reset(): void;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  maxRequests?: number;
  maxHoldMs?: number;
}

function isLoopback(hostname: string): boolean {
  return hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]";
}

export async function startFaultProxy(target: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  if (!isLoopback(upstream.hostname)) throw new Error(`the fault proxy only forwards to loopback, not ${upstream.hostname}`);
  const maxRequests = opts.maxRequests ?? 300;
  const maxHoldMs = opts.maxHoldMs ?? 5_000;
  const queue: ProxyAction[] = [];
  const requests: ProxiedRequest[] = [];
  let served = 0;
  const holds = new Set<NodeJS.Timeout>();

  function forward(req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: upstream.host };
      delete headers.connection;
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      up.on("timeout", () => up.destroy(new Error("upstream timeout")));
      up.on("error", reject);
      up.end(body);
    });
  }

  function relay(res: http.ServerResponse, answer: { status: number; headers: http.IncomingHttpHeaders; body: Buffer }): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(answer.headers)) {
      if (v === undefined || ["connection", "transfer-encoding", "keep-alive", "content-length"].includes(k)) continue;
      headers[k] = v;
    }
    headers["content-length"] = answer.body.length;
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }

  function synthetic(res: http.ServerResponse, a: { status: number; code?: string; retryAfter?: string; rawBody?: string; contentType?: string }): void {
    const body =
      a.rawBody ??
      JSON.stringify({
        error: { code: a.code ?? (a.status === 429 ? "RATE_LIMITED" : a.status === 503 ? "SERVICE_UNAVAILABLE" : "INJECTED"), message: "injected by the fault proxy", detail: `status ${a.status}` },
        meta: { request_id: `req_proxy_${served}`, timestamp: new Date().toISOString() },
      });
    const headers: http.OutgoingHttpHeaders = {
      "content-type": a.contentType ?? (a.rawBody === undefined ? "application/json; charset=utf-8" : "text/html"),
      "content-length": Buffer.byteLength(body),
    };
    if (a.retryAfter !== undefined) headers["retry-after"] = a.retryAfter;
    res.writeHead(a.status, headers);
    res.end(body);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        served++;
        const over = served > maxRequests;
        const action: ProxyAction = over ? { status: 503, code: "PROXY_LIMIT" } : (queue.shift() ?? "pass");
        const idem = req.headers["idempotency-key"];
        const entry: ProxiedRequest = {
          method: req.method ?? "GET",
          url: req.url ?? "/",
          idempotencyKey: typeof idem === "string" ? idem : undefined,
          authorization: req.headers.authorization,
          action,
          at: Date.now(),
        };
        requests.push(entry);
        const body = Buffer.concat(chunks);
        try {
          if (action === "drop") {
            req.socket.destroy();
          } else if (action === "hang") {
            const t = setTimeout(() => {
              holds.delete(t);
              req.socket.destroy();
            }, maxHoldMs);
            holds.add(t);
            res.on("close", () => {
              clearTimeout(t);
              holds.delete(t);
            });
          } else if (typeof action === "object") {
            synthetic(res, action);
          } else {
            const answer = await forward(req, body);
            entry.upstreamStatus = answer.status;
            if (action === "pass") relay(res, answer);
            else if (action === "forward-then-503") synthetic(res, { status: 503 });
            else req.socket.destroy();
          }
        } catch (err) {
          if (!res.headersSent) synthetic(res, { status: 502, code: "PROXY_UPSTREAM_ERROR", rawBody: String(err), contentType: "text/plain" });
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(...actions) {
      queue.push(...actions);
    },
    reset() {
      queue.length = 0;
      requests.length = 0;
    },
    async close() {
      for (const t of holds) clearTimeout(t);
      holds.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
