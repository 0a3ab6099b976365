// deploy/kubernetes/*.yaml validated offline against the Kubernetes OpenAPI schemas (kubernetes-models),
// strictly (unknown fields refused), and checked against the brief and against each other.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "../../src/shared/config.ts";
import { DEPLOY } from "./artefacts.ts";
import { loadManifests, parseManifests, validateManifest } from "./k8s.ts";

const DIR = path.join(DEPLOY, "kubernetes");
const manifests = loadManifests(DIR);

// Manifests are free-form YAML; the schema test above is what types them.
type Obj = Record<string, any>;
const docs = manifests.map((m) => m.doc as Obj);
const one = (kind: string): Obj => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found, `exactly one ${kind}`).toHaveLength(1);
  return found[0]!;
};

describe("Kubernetes manifests match the Kubernetes schemas", () => {
  test("the directory holds the Deployment, Service, HPA, ConfigMap, Secret and PodDisruptionBudget", () => {
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`).sort()).toEqual([
      "apps/v1 Deployment",
      "autoscaling/v2 HorizontalPodAutoscaler",
      "policy/v1 PodDisruptionBudget",
      "v1 ConfigMap",
      "v1 Secret",
      "v1 Service",
    ]);
  });

  test.each(manifests.map((m) => [`${path.basename(m.file)}#${m.index} ${(m.doc as Obj).kind}`, m] as const))("%s", (_name, m) => {
    expect(validateManifest(m.doc)).toEqual([]);
  });
});

describe("the validation can fail", () => {
  const deploymentYaml = fs.readFileSync(path.join(DIR, "deployment.yaml"), "utf8");
  const broken = (from: string | RegExp, to: string) => {
    const text = deploymentYaml.replace(from, to);
    expect(text, `the edit ${String(from)} applies`).not.toBe(deploymentYaml);
    return parseManifests(text)[0]!.doc;
  };

  test("a wrong type", () => {
    expect(validateManifest(broken("replicas: 3", "replicas: three"))).toEqual(["data/spec/replicas must be integer"]);
  });

  test("a misspelt field (which the schemas alone would accept)", () => {
    expect(validateManifest(broken("readinessProbe:", "readinesProbe:"))).toEqual([
      "data/spec/template/spec/containers/0/readinesProbe: unknown field (not in the apps/v1 Deployment schema)",
    ]);
  });

  test("a missing required field", () => {
    const noPort = broken("containerPort: 3000", "hostIP: 127.0.0.1");
    expect(validateManifest(noPort).join("\n")).toMatch(/must have required property '?containerPort/);
  });

  test("a bad quantity", () => {
    expect(validateManifest(broken('cpu: "500m"', 'cpu: "half a core"')).join("\n")).toMatch(/limits\/cpu must match format "quantity"/);
  });

  test("a kind or apiVersion Kubernetes does not have, or a field of another version", () => {
    expect(validateManifest({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } })).toEqual([
      "no Kubernetes schema for apiVersion apps/v1, kind Deploymnet",
    ]);
    expect(validateManifest({ apiVersion: "autoscaling/v3", kind: "HorizontalPodAutoscaler" })[0]).toMatch(/no Kubernetes schema/);
    // autoscaling/v1 has no `metrics` (only targetCPUUtilizationPercentage).
    const hpa = structuredClone(one("HorizontalPodAutoscaler"));
    hpa.apiVersion = "autoscaling/v1";
    expect(validateManifest(hpa)).toEqual(expect.arrayContaining([expect.stringMatching(/^data\/spec\/metrics: unknown field/)]));
  });
});

describe("the manifests implement the brief and fit together", () => {
  const deployment = one("Deployment");
  const pod = deployment.spec.template;
  const container = pod.spec.containers[0];
  const configMap = one("ConfigMap");
  const secret = one("Secret");

  test("the brief's requests and limits", () => {
    expect(container.resources).toEqual({ requests: { memory: "256Mi", cpu: "250m" }, limits: { memory: "512Mi", cpu: "500m" } });
  });

  test("startup, readiness and liveness probes ask GET /health on the container's port", () => {
    const ports = new Map<string | number, number>((container.ports as Obj[]).flatMap((p) => [[p.name, p.containerPort], [p.containerPort, p.containerPort]]));
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const get = container[probe]?.httpGet;
      expect(get?.path, probe).toBe("/health");
      expect(ports.get(get.port), `${probe} port`).toBe(Number(configMap.data.PORT));
    }
  });

  test("configuration from the ConfigMap, DATABASE_URL and tokens from the Secret", () => {
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    const env = new Map<string, Obj>((container.env as Obj[]).map((e) => [e.name, e]));
    const dbUrl = env.get("DATABASE_URL")?.valueFrom?.secretKeyRef;
    expect(dbUrl).toEqual({ name: secret.metadata.name, key: "DATABASE_URL" });
    for (const e of container.env as Obj[]) {
      const ref = e.valueFrom?.secretKeyRef;
      expect(ref?.name, e.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData), e.name).toContain(ref.key);
    }
  });

  test("the ConfigMap plus a real DATABASE_URL is a configuration the server accepts; one process per pod", () => {
    const config = loadConfig({ ...configMap.data, DATABASE_URL: "postgres://u:p@db:5432/valueverse" });
    expect(config.workers).toBe(1);
    expect(config.port).toBe(3000);
    expect((config.pool.size + config.pool.maxOverflow) * one("HorizontalPodAutoscaler").spec.maxReplicas).toBeLessThanOrEqual(
      Number(/^max_connections\s*=\s*(\d+)/m.exec(fs.readFileSync(path.join(DEPLOY, "postgresql/postgresql.conf"), "utf8"))![1]) - 20,
    );
  });

  test("every ConfigMap key is documented in README.md (NODE_OPTIONS aside)", () => {
    const readme = fs.readFileSync(path.join(DEPLOY, "../README.md"), "utf8");
    for (const key of Object.keys(configMap.data)) {
      if (key === "NODE_OPTIONS") continue;
      expect(readme, key).toContain("`" + key + "`");
    }
  });

  test("the Secret's placeholders are refused by the server, naming each variable", () => {
    let error: unknown;
    try {
      loadConfig({ ...configMap.data, ...secret.stringData });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    for (const key of Object.keys(secret.stringData)) expect(problems).toContain(key);
  });

  test("the Service, HPA and PodDisruptionBudget select the Deployment's pods", () => {
    const labels: Obj = pod.metadata.labels;
    const selects = (selector: Obj) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    const service = one("Service");
    expect(selects(service.spec.selector)).toBe(true);
    expect((container.ports as Obj[]).map((p) => p.name)).toContain(service.spec.ports[0].targetPort);
    const pdb = one("PodDisruptionBudget");
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    const hpa = one("HorizontalPodAutoscaler");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
  });

  test("the brief's autoscaling: 3-10 replicas at 70% CPU", () => {
    const hpa = one("HorizontalPodAutoscaler");
    expect(hpa.spec.minReplicas).toBe(3);
    expect(hpa.spec.maxReplicas).toBe(10);
    expect(hpa.spec.metrics).toEqual([{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }]);
    expect(deployment.spec.replicas).toBe(hpa.spec.minReplicas);
  });

  test("Prometheus scrapes the container port at /metrics", () => {
    const a = pod.metadata.annotations;
    expect(a["prometheus.io/scrape"]).toBe("true");
    expect(Number(a["prometheus.io/port"])).toBe(Number(configMap.data.PORT));
    expect(a["prometheus.io/path"]).toBe("/metrics");
  });
});
