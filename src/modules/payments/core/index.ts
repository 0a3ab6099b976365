export * from "./provider.ts";
export * from "./types.ts";
export * from "./dunning.ts";
export * from "./sandbox.ts";
export * from "./json.ts";
export * from "./input.ts";
