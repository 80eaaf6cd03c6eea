/** Memoises a factory: the first call builds, later calls reuse (cold-start wiring that may throw). */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}
