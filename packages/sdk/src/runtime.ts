// RuntimeClient: the /api/v1/license/* operations a vendor's program calls, authenticated with
// `Authorization: License <license key>`. Its methods are installed from the generated operations table.
// Answers are returned as received: verify `signature` (verifyRuntimeResult) before trusting them.
import { BaseClient, type ClientOptions, installOperations, type SurfaceMethods } from "./client.js";

export interface RuntimeClientOptions extends ClientOptions {
  /** The license key (`lsk_…`). Sent only as `Authorization: License`; never passed to hooks. */
  licenseKey: string;
}

class RuntimeClientImpl extends BaseClient<"runtime"> {
  constructor(options: RuntimeClientOptions) {
    if (!options || typeof options.licenseKey !== "string" || options.licenseKey === "") throw new TypeError("licenseKey is required");
    super("runtime", options, `License ${options.licenseKey}`);
  }
}
installOperations(RuntimeClientImpl.prototype, "runtime");

/** `new RuntimeClient({ baseUrl, licenseKey })`: one method per runtime operationId, e.g. `validateLicense({ body: { fingerprint } })`. */
export type RuntimeClient = RuntimeClientImpl & SurfaceMethods<"runtime">;
export const RuntimeClient = RuntimeClientImpl as new (options: RuntimeClientOptions) => RuntimeClient;
