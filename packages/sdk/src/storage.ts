// The license guard's persistence: a tiny async key/value interface an application backs with
// whatever it has (a file, localStorage, the OS keychain, a database row). Values are strings (JSON).

export interface GuardStorage {
  get(key: string): Promise<string | null | undefined> | string | null | undefined;
  set(key: string, value: string): Promise<void> | void;
  delete?(key: string): Promise<void> | void;
}

/** In-memory storage (lost at exit): for tests, or for processes that activate on every start. */
export interface MemoryStorage extends GuardStorage {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** The stored values, for inspection. */
  readonly data: Map<string, string>;
}

export function memoryStorage(initial?: Record<string, string>): MemoryStorage {
  const data = new Map<string, string>(initial ? Object.entries(initial) : []);
  return {
    data,
    async get(key) {
      return data.get(key);
    },
    async set(key, value) {
      data.set(key, String(value));
    },
    async delete(key) {
      data.delete(key);
    },
  };
}

/** Storage over a Web Storage object (`localStorage` in browsers, Deno). */
export function webStorage(store: { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void }): GuardStorage {
  return {
    get: (key) => store.getItem(key),
    set: (key, value) => store.setItem(key, value),
    delete: (key) => store.removeItem(key),
  };
}
