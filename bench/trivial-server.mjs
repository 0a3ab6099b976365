// The HTTP ceiling of this machine for the ingest benchmark: plain fastify, the same number of
// worker processes as the server under test, parsing the same JSON body and answering it back.
// Nothing is validated or stored. Usage: node bench/trivial-server.mjs <port> <workers>
import cluster from "node:cluster";
import Fastify from "fastify";

const port = Number(process.argv[2]);
const workers = Number(process.argv[3] || 1);
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
    process.exit(0);
  });
} else {
  const app = Fastify({ bodyLimit: 64 << 20 });
  app.get("/health", async () => ({ status: "ok" }));
  app.post("/api/v1/events", async (request) => ({ event: request.body.event }));
  app.post("/api/v1/events/batch", async (request) => ({ events: request.body.events }));
  await app.listen({ port, host: "127.0.0.1" });
  process.on("SIGTERM", () => app.close().then(() => process.exit(0)));
}
