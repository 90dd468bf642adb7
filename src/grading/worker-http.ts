import { createServer, type Server } from "node:http";
import { metricsAuthorized, registry } from "../metrics.ts";

/**
 * A worker-only process has no API, so it serves its own /metrics (grading histograms live in
 * this process) and /healthz for container health checks.
 */
export function startWorkerHttp(port: number, host: string, metricsToken?: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url === "/metrics" && !metricsAuthorized(metricsToken, req.headers.authorization)) {
      res
        .writeHead(401, { "content-type": "application/json" })
        .end('{"error":{"code":"METRICS_TOKEN_REQUIRED","message":"Send `Authorization: Bearer <METRICS_TOKEN>` to read /metrics."}}');
    } else if (req.url === "/metrics") {
      res.writeHead(200, { "content-type": registry.contentType }).end(await registry.metrics());
    } else if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    } else {
      res
        .writeHead(404, { "content-type": "application/json" })
        .end('{"error":{"code":"ROUTE_NOT_FOUND","message":"Try /metrics or /healthz."}}');
    }
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}
