#!/usr/bin/env python3
"""A local receiver for Budget alerts, for the demo.

Usage: hack/alert-receiver.py --port-file FILE --log FILE

Listens on 127.0.0.1 (a free port, written to --port-file), answers 200 to
every POST, and appends one JSON line per request to --log: the path, the
Idempotency-Key and signature headers, and the body.
"""
import argparse
import http.server
import json


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            with open(args.log, "a", encoding="utf-8") as out:
                out.write(json.dumps({
                    "path": self.path,
                    "idempotency_key": self.headers.get("Idempotency-Key", ""),
                    "signature": self.headers.get("X-GPU-Autoscaler-Signature", ""),
                    "body": body}) + "\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *unused):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
