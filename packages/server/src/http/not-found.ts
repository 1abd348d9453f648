// Unknown routes answer 404 NOT_FOUND; a known path with the wrong method answers 405
// METHOD_NOT_ALLOWED with an Allow header. A second router holds every registered (method, path).
import FindMyWay from "find-my-way";
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import { sendError } from "./error-handler.js";
import { ApiError } from "./errors.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

export function installNotFound(app: FastifyInstance): void {
  const index = FindMyWay();
  const seen = new Set<string>();
  app.addHook("onRoute", (route) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]) as HTTPMethods[];
    for (const m of methods) {
      const key = `${m} ${route.url}`;
      if (m === "HEAD" || m === "OPTIONS" || seen.has(key)) continue;
      seen.add(key);
      index.on(m as "GET", route.url, () => {});
    }
  });
  app.setNotFoundHandler(async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split("?", 1)[0]!;
    const allowed = METHODS.filter((m) => m !== req.method && index.find(m, path) !== null);
    if (allowed.length > 0) {
      return sendError(
        req,
        reply,
        new ApiError("METHOD_NOT_ALLOWED", `${req.method} is not supported on ${path}; use ${allowed.join(", ")}`, {
          allow: allowed.join(", "),
        }),
      );
    }
    return sendError(req, reply, new ApiError("NOT_FOUND", `no route for ${req.method} ${path}`));
  });
}
