/** Activation names and their ids in `wgsl/activation.wgsl` (the `act` argument / ACT override). */
export const ACTIVATIONS = {
  identity: 0,
  relu: 1,
  gelu: 2,
  gelu_tanh: 3,
  selu: 4,
  tanh: 5,
  sigmoid: 6,
  silu: 7,
} as const;

/** An activation's name. */
export type Activation = keyof typeof ACTIVATIONS;

/** The id of a named activation; an unknown name fails with the list of known ones. */
export function activationId(name: string): number {
  const id = (ACTIVATIONS as Record<string, number>)[name];
  if (id === undefined) {
    throw new RangeError(
      `Cannot find activation "${name}": known are ${
        Object.keys(ACTIVATIONS).map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  return id;
}
