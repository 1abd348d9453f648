// @licensekit/sdk — public surface.
// Clients, errors, retries, logging hooks and the generated contract (S1):
export {
  type BaseClient,
  type CallOptions,
  type ClientOptions,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_USER_AGENT,
  type OperationArgs,
  type OperationMethod,
  type OperationResult,
  operationsOf,
  SDK_VERSION,
  type SurfaceMethods,
} from "./client.js";
export {
  ApiError,
  type ErrorEnvelope,
  isErrorEnvelope,
  type ResponseMeta,
  type ResponseSignature,
  SignatureVerificationError,
  TransportError,
  UNKNOWN_ERROR,
} from "./errors.js";
export type { components, operations, paths } from "./generated/openapi.js";
export { OPERATIONS, type OperationId, type Operations, type Surface, type SurfaceOperationId } from "./generated/operations.js";
export type { ErrorHookEvent, Hooks, RequestHookEvent } from "./hooks.js";
export { ManagementClient, type ManagementClientOptions } from "./management.js";
export { DEFAULT_RETRY, isRetryableFailure, isRetryableRequest, parseRetryAfter, type RetryOptions } from "./retry.js";
export { RuntimeClient, type RuntimeClientOptions } from "./runtime.js";
export { SystemClient, type SystemClientOptions } from "./system.js";
// Verification, offline envelopes and the license guard (S2):
export { Base64Error, decodeBase64, encodeBase64 } from "./base64.js";
export {
  createLicenseGuard,
  type GuardBinding,
  type GuardClock,
  type GuardSnapshot,
  type GuardSource,
  type GuardState,
  type LicenseGuard,
  type LicenseGuardOptions,
  systemGuardClock,
} from "./guard.js";
export {
  canonicalLicenseKey,
  type DecryptedOfflineEnvelope,
  decryptOfflineEnvelope,
  type OfflineEntitlement,
  type OfflineEnvelope,
  type OfflineErrorCode,
  OfflineLicenseError,
  type OfflineWindow,
  type RuntimeEntitlement,
  type VerifiedOfflineLicense,
  type VerifyOfflineLicenseOptions,
  verifyOfflineLicense,
} from "./offline.js";
export { type GuardStorage, type MemoryStorage, memoryStorage, webStorage } from "./storage.js";
export {
  createKeyCache,
  type KeyCache,
  type KeyCacheOptions,
  type KeyResolver,
  type KeySource,
  type PublicKeyRecord,
  PublicKeyStore,
  type RuntimeErrorBody,
  type RuntimeSignature,
  type SignedErrorEnvelope,
  type SignedRuntimeResult,
  type VerifiedRuntimeError,
  type VerifiedRuntimeResult,
  type VerifyOptions,
  verifyRuntimeError,
  verifyRuntimeResult,
  verifySignedText,
} from "./verify.js";
