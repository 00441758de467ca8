#!/usr/bin/env python3
"""Opens COUNT keep-alive connections to 127.0.0.1:PORT, sends one GET on each, reads each answer,
and keeps them all open and idle; prints "ready N" when all have been answered, then waits for
stdin to close (or HOLD seconds) before closing them. For deploy/bench/idle.sh.

    idle_clients.py PORT COUNT [HOLD]
"""
import resource
import selectors
import socket
import sys
import time


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    hold = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if count + 64 > hard:
        sys.exit(f"open-file limit {hard} is too low for {count} connections")
    sel = selectors.DefaultSelector()
    request = b"GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n"
    socks, pending = [], {}
    deadline = time.monotonic() + 120
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", port))
        s.sendall(request)
        s.setblocking(False)
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        if i % 500 == 499:
            drain(sel, pending, 0)
    while pending and time.monotonic() < deadline:
        drain(sel, pending, 1.0)
    if pending:
        sys.exit(f"{len(pending)} of {count} connections got no full answer in time")
    print(f"ready {count}", flush=True)
    end = time.monotonic() + hold
    while time.monotonic() < end:
        if sys.stdin.readline() == "":
            break
    for s in socks:
        s.close()


def drain(sel, pending, timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        data = s.recv(65536)
        if not data:
            sys.exit("a connection was closed by the gateway")
        pending[s] += data
        head, sep, rest = pending[s].partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) >= length:
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit(f"unexpected answer: {head[:80]!r}")
                del pending[s]
                sel.unregister(s)


if __name__ == "__main__":
    main()
