// Schema pieces shared by the management route files.
import { Type } from "@sinclair/typebox";

export const CODE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]*$";
export const Code = Type.String({ minLength: 1, maxLength: 128, pattern: CODE_PATTERN });
export const Name = Type.String({ minLength: 1, maxLength: 200 });

export const MANAGEMENT_ERRORS = ["UNAUTHORIZED", "TOKEN_SCOPE_DENIED"] as const;
export const READ_ERRORS = [...MANAGEMENT_ERRORS, "NOT_FOUND"] as const;
export const WRITE_ERRORS = [...MANAGEMENT_ERRORS, "INVALID_JSON", "VALIDATION_ERROR", "CONFLICT", "IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"] as const;
