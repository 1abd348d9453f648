// SystemClient: the unauthenticated endpoints — health, healthz, readyz (its 503 "not_ready" envelope is
// returned, not thrown), getMetrics (Prometheus text) and listPublicKeys. Methods come from the operations table.
import { BaseClient, type ClientOptions, installOperations, type SurfaceMethods } from "./client.js";

export type SystemClientOptions = ClientOptions;

class SystemClientImpl extends BaseClient<"system"> {
  constructor(options: SystemClientOptions) {
    super("system", options);
  }
}
installOperations(SystemClientImpl.prototype, "system");

/** `new SystemClient({ baseUrl })`: `health()`, `healthz()`, `readyz()`, `getMetrics()`, `listPublicKeys()`. */
export type SystemClient = SystemClientImpl & SurfaceMethods<"system">;
export const SystemClient = SystemClientImpl as new (options: SystemClientOptions) => SystemClient;
