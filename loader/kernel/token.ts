/** Proves a `Kernel` is constructed by `load()`, after the ABI check. Not exported from mod.ts. */
export const KERNEL_TOKEN: unique symbol = Symbol("krepis.kernel");
