#!/usr/bin/env python3
"""A local stand-in for Prometheus's instant-query API, for the demo.

Usage: hack/fake-prometheus.py --port-file FILE --usage NS/POD/CONTAINER=CPU,MEMORY ...

Listens on 127.0.0.1 (a free port, written to --port-file) and answers
GET /api/v1/query as Prometheus does, evaluated at the current time: the
cAdvisor CPU query (container_cpu_usage_seconds_total) gets CPU cores and the
working-set query (container_memory_working_set_bytes) gets memory bytes for
every --usage entry; any other query (dcgm-exporter's) gets no series.
"""
import argparse
import http.server
import json
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--usage", action="append", default=[],
                        help="NS/POD/CONTAINER=CPU_CORES,MEMORY_BYTES")
    args = parser.parse_args()
    usage = []
    for entry in args.usage:
        key, values = entry.split("=", 1)
        ns, pod, container = key.split("/")
        cpu, memory = values.split(",")
        usage.append(({"namespace": ns, "pod": pod, "container": container},
                      float(cpu), float(memory)))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/api/v1/query":
                self.send_error(404)
                return
            query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
            now = time.time()
            result = []
            for labels, cpu, memory in usage:
                if "container_cpu_usage_seconds_total" in query:
                    result.append({"metric": labels, "value": [now, str(cpu)]})
                elif "container_memory_working_set_bytes" in query:
                    result.append({"metric": labels, "value": [now, str(memory)]})
            body = json.dumps({"status": "success",
                               "data": {"resultType": "vector", "result": result}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w", encoding="utf-8") as out:
        out.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
