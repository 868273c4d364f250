#!/usr/bin/env python3
"""Server-side apply of YAML manifests, for the demo (no kubectl needed).

Usage: hack/kube-apply.py --server URL [--field-manager NAME] FILE|- [FILE...]

Each YAML document is sent as `PATCH ...?fieldManager=NAME&force=true` with
`Content-Type: application/apply-patch+yaml`, as `kubectl apply --server-side`
does; the resource path comes from the server's discovery documents. Prints
one line per object; exits 1 on the first error, printing the server's Status
message.
"""
import argparse
import json
import sys
import urllib.error
import urllib.request

import yaml


def get(server, path):
    with urllib.request.urlopen(server + path, timeout=10) as r:
        return json.load(r)


def resources(server, api_version, cache):
    if api_version not in cache:
        base = "/api/v1" if api_version == "v1" else "/apis/" + api_version
        cache[api_version] = {r["kind"]: (base, r["name"], r["namespaced"])
                              for r in get(server, base)["resources"] if "/" not in r["name"]}
    return cache[api_version]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="API server URL, http://127.0.0.1:PORT")
    parser.add_argument("--field-manager", default="gpu-autoscaler-demo")
    parser.add_argument("files", nargs="+", help="YAML files, or - for standard input")
    args = parser.parse_args()
    cache = {}
    for name in args.files:
        text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            kind, meta = doc["kind"], doc["metadata"]
            try:
                base, plural, namespaced = resources(args.server, doc["apiVersion"], cache)[kind]
            except KeyError:
                sys.exit(f"kube-apply: {name}: the server does not serve {doc['apiVersion']} {kind}")
            ns = meta.get("namespace", "default") if namespaced else None
            path = base + (f"/namespaces/{ns}" if ns else "") + f"/{plural}/{meta['name']}"
            request = urllib.request.Request(
                args.server + path + f"?fieldManager={args.field_manager}&force=true",
                data=yaml.safe_dump(doc).encode(), method="PATCH",
                headers={"Content-Type": "application/apply-patch+yaml"})
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except urllib.error.HTTPError as e:
                body = e.read().decode(errors="replace")
                try:
                    body = json.loads(body).get("message", body)
                except ValueError:
                    pass
                sys.exit(f"kube-apply: {kind} {meta['name']}: {e.code}: {body}")
            print(f"{kind.lower()}/{meta['name']} applied" + (f" in {ns}" if ns else ""))


if __name__ == "__main__":
    main()
