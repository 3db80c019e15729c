// Assertions for the live suite, which runs in Node and in a browser page alike (so no
// node:assert). Each throws an Error whose message says what was expected and what came.

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

export function equal(actual, expected, what) {
  if (!Object.is(actual, expected)) {
    throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

export function sameBytes(actual, expected, what) {
  equal(actual.length, expected.length, `${what} (length)`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) throw new Error(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Awaits `promise`, which must reject with an error whose `code` is `code`; returns the error. */
export async function rejectsWithCode(promise, code, what) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  check(error !== undefined, `${what}: expected a rejection with code ${code}, it fulfilled`);
  equal(error.code, code, `${what}: the error's code (${error.name}: ${error.message})`);
  return error;
}

/** Rejects after `ms` with a message naming `what`, unless `promise` settles first. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Deterministic bytes: a xorshift32 stream from `seed`. */
export function pattern(length, seed) {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** FNV-1a (32 bits) over a sequence of byte arrays, as if concatenated. */
export function fnv1a(chunks, hash = 0x811c9dc5) {
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++) {
      hash ^= c[i];
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
  }
  return hash;
}

function show(v) {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}
