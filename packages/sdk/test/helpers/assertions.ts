// Assertions shared by the SDK tests.
import assert from "node:assert/strict";

/** Awaits `p`, requires it to reject with an instance of `cls`, and returns that error. */
export async function rejectsWith<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${cls.name}, the call succeeded`);
}
