#!/usr/bin/env python3
"""WebSocket load for deploy/bench/websocket.sh: CONNECTIONS clients (asyncio, the `websockets`
library) each send a SIZE-byte binary message and wait for its echo, over and over, for
SECONDS; prints {"messages": N, "seconds": S, "errors": E} (a message = one echoed round trip).

    ws_load.py URL CONNECTIONS SECONDS SIZE
"""
import asyncio
import json
import os
import sys
import time

from websockets.asyncio.client import connect


async def client(url: str, payload: bytes, deadline: float, counts: list):
    try:
        async with connect(url, max_size=None, compression=None, ping_interval=None, open_timeout=10) as ws:
            while time.monotonic() < deadline:
                await ws.send(payload)
                echo = await ws.recv()
                if len(echo) != len(payload):
                    counts[1] += 1
                    return
                counts[0] += 1
    except Exception:  # noqa: BLE001 - counted, the figure is then flagged
        counts[1] += 1


async def main():
    url, connections, seconds, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    payload = os.urandom(size)
    counts = [0, 0]
    start = time.monotonic()
    await asyncio.gather(*(client(url, payload, start + seconds, counts) for _ in range(connections)))
    print(json.dumps({"messages": counts[0], "seconds": time.monotonic() - start, "errors": counts[1]}))


asyncio.run(main())
