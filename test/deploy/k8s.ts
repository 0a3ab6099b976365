// Offline validation of Kubernetes manifests against the official Kubernetes OpenAPI schemas.
//
// The schemas come from `kubernetes-models` (devDependency): it is generated from Kubernetes' own
// OpenAPI document (one JSON schema per definition, compiled with ajv) and offers, for every
// apiVersion/kind, a model whose validate() checks types, required fields, enums and formats.
//
// Kubernetes' schemas do not forbid unknown fields, so on their own they would accept a misspelt
// `readinesProbe` that the API server (strict field validation) refuses and `kubectl apply
// --validate=false` silently drops. We add that check (as kubeconform's -strict does): the manifest is
// handed to the schema validator behind a Proxy that records which fields the validator looks at;
// every field of every object must have been looked at, i.e. be declared by its schema (map-valued
// fields such as labels are enumerated by the validator, so any key is accepted there).
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);

export interface Manifest {
  file: string;
  /** 0-based index of the document in its file. */
  index: number;
  doc: unknown;
}

type ModelCtor = (new (data?: object) => unknown) & { apiVersion: string; kind: string; prototype: { validate(this: unknown): void } };

/** The kubernetes-models class for an apiVersion/kind, or undefined when Kubernetes has no such type. */
export function modelFor(apiVersion: string, kind: string): ModelCtor | undefined {
  // kubernetes-models has one module per group/version: "v1" (core), "apps/v1", "autoscaling/v2"...
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  let mod: Record<string, unknown>;
  try {
    mod = require(`kubernetes-models/${apiVersion}`) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const ctor = mod[kind] as ModelCtor | undefined;
  if (typeof ctor !== "function" || ctor.apiVersion !== apiVersion || ctor.kind !== kind) return undefined;
  return ctor;
}

/** Reads every YAML document of every .yaml/.yml file in a directory (empty documents skipped). */
export function loadManifests(dir: string): Manifest[] {
  const out: Manifest[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(name)) continue;
    const file = path.join(dir, name);
    out.push(...parseManifests(fs.readFileSync(file, "utf8"), file));
  }
  return out;
}

export function parseManifests(text: string, file = "<inline>"): Manifest[] {
  const out: Manifest[] = [];
  parseAllDocuments(text).forEach((d, index) => {
    if (d.errors.length > 0) throw new Error(`${file}: document ${index}: ${d.errors.map((e) => e.message).join("; ")}`);
    const doc: unknown = d.toJS();
    if (doc !== null && doc !== undefined) out.push({ file, index, doc });
  });
  return out;
}

/** Problems with one manifest: schema errors and unknown fields, each naming its JSON path. Empty when valid. */
export function validateManifest(doc: unknown): string[] {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return ["the document is not an object"];
  const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind must be strings"];
  const model = modelFor(apiVersion, kind);
  if (!model) return [`no Kubernetes schema for apiVersion ${apiVersion}, kind ${kind}`];

  const seen = new Map<object, Set<string>>(); // object -> fields the validator read
  const enumerated = new Set<object>(); // objects whose every key the validator iterated (maps)
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown): unknown => {
    if (value === null || typeof value !== "object") return value;
    const target = value as object;
    const existing = proxies.get(target);
    if (existing) return existing;
    const proxy = new Proxy(target, {
      get(t, key, receiver) {
        if (typeof key === "string") mark(t, key);
        return wrap(Reflect.get(t, key, receiver));
      },
      has(t, key) {
        if (typeof key === "string") mark(t, key);
        return Reflect.has(t, key);
      },
      ownKeys(t) {
        enumerated.add(t);
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(target, proxy);
    return proxy;
  };
  const mark = (t: object, key: string) => {
    let keys = seen.get(t);
    if (!keys) seen.set(t, (keys = new Set()));
    keys.add(key);
  };

  const problems: string[] = [];
  try {
    model.prototype.validate.call(wrap(doc));
  } catch (err) {
    problems.push(...String((err as Error).message).split(", data").map((m, i) => (i === 0 ? m : "data" + m)));
    return problems; // unknown-field results are only meaningful for a document the schema accepts
  }

  const walk = (value: unknown, at: string) => {
    if (value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${at}/${i}`));
      return;
    }
    const read = seen.get(value);
    for (const [key, child] of Object.entries(value)) {
      if (!enumerated.has(value) && !read?.has(key)) problems.push(`${at}/${key}: unknown field (not in the ${apiVersion} ${kind} schema)`);
      else walk(child, `${at}/${key}`);
    }
  };
  walk(doc, "data");
  return problems;
}
