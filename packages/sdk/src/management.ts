// ManagementClient: every operation that declares `x-required-scopes`, authenticated with
// `Authorization: Bearer <token>`. Its methods are installed from the generated operations table.
import { BaseClient, type ClientOptions, installOperations, type SurfaceMethods } from "./client.js";

export interface ManagementClientOptions extends ClientOptions {
  /** A management API token (`lkm_…`). Sent only as `Authorization: Bearer`; never passed to hooks. */
  token: string;
}

class ManagementClientImpl extends BaseClient<"management"> {
  constructor(options: ManagementClientOptions) {
    if (!options || typeof options.token !== "string" || options.token === "") throw new TypeError("token is required");
    super("management", options, `Bearer ${options.token}`);
  }
}
installOperations(ManagementClientImpl.prototype, "management");

/** `new ManagementClient({ baseUrl, token })`: one method per management operationId, e.g. `renewLicense({ path: { id }, body, idempotencyKey })`. */
export type ManagementClient = ManagementClientImpl & SurfaceMethods<"management">;
export const ManagementClient = ManagementClientImpl as new (options: ManagementClientOptions) => ManagementClient;
