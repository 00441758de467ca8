#!/usr/bin/env python3
"""Sends an exact number of GET requests on one kept-alive connection, one after the other, for
deploy/bench/callgrind-jwt.sh (where the count matters, not the rate).

    http_sequence.py PORT PATH COUNT [TOKENS_FILE [SKIP]]
    http_sequence.py PORT PATH COUNT --headers ['Name: value'...]

With TOKENS_FILE, request i carries "Authorization: Bearer" and token SKIP + i of the file (one
per line); the file must hold enough of them. With --headers, every request carries those
headers (deploy/bench/callgrind-fwd.sh). Exits 1 at the first answer that is not 200.
"""
import http.client
import sys


def main():
    port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    tokens = None
    fixed = {}
    if len(sys.argv) > 4 and sys.argv[4] == "--headers":
        for header in sys.argv[5:]:
            name, _, value = header.partition(": ")
            fixed[name] = value
    elif len(sys.argv) > 4:
        skip = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        with open(sys.argv[4]) as f:
            tokens = [line.strip() for line in f if line.strip()][skip:skip + count]
        if len(tokens) < count:
            sys.exit(f"{sys.argv[4]}: {len(tokens)} tokens after skipping {skip}, {count} needed")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(count):
        headers = {"Authorization": "Bearer " + tokens[i]} if tokens else dict(fixed)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"request {i + 1} of {count} to {path}: {response.status} {body[:200]!r}")
    conn.close()


if __name__ == "__main__":
    main()
