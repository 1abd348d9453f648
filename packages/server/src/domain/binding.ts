// Runtime binding payloads (NOTES §4) normalised into one identity per device or container.
import { ApiError } from "../http/errors.js";

export interface BindingRequest {
  fingerprint?: string;
  hostname?: string;
  os?: string;
  is_vm?: boolean;
  is_container?: boolean;
  container_id?: string;
  cluster_id?: string;
  namespace?: string;
  pod_name?: string;
  app_version?: string;
}

export interface Binding {
  kind: "hardware" | "container";
  /** Stable identity within a license: `hw:<fingerprint>` or `ct:<cluster>/<namespace>/<pod>/<container>`. */
  key: string;
  request: BindingRequest;
}

/** Hardware bindings need `fingerprint`; container bindings need one of cluster_id, namespace, pod_name, container_id. */
export function normalizeBinding(req: BindingRequest): Binding {
  if (req.is_container === true) {
    const parts = [req.cluster_id, req.namespace, req.pod_name, req.container_id].map((p) => (p ?? "").trim());
    if (parts.every((p) => p === "")) {
      throw new ApiError("VALIDATION_ERROR", "field container_id: container bindings need at least one of cluster_id, namespace, pod_name, container_id");
    }
    return { kind: "container", key: `ct:${parts.map(encodeURIComponent).join("/")}`, request: req };
  }
  const fp = (req.fingerprint ?? "").trim();
  if (fp === "") throw new ApiError("VALIDATION_ERROR", "field fingerprint: is required for hardware bindings");
  return { kind: "hardware", key: `hw:${fp}`, request: req };
}
