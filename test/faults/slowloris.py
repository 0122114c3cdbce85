#!/usr/bin/env python3
"""Slow-handshake flood: N TCP connections to HOST:PORT that each send one
byte of a TLS ClientHello every INTERVAL seconds, from ADDRS source
addresses (127.0.1.1, 127.0.1.2, ...; all of 127/8 is loopback). A
connection the server closes is opened again at once with --reconnect.
Prints key=value figures when DURATION seconds are over:
  opened closed_by_server open_at_end max_open lifetime_p50 lifetime_max"""
import argparse
import selectors
import socket
import statistics
import time

# A TLS record header announcing a 512-byte handshake message, then
# ClientHello bytes: the server waits for the rest of the record.
HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + bytes(500)

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("-n", type=int, default=1100)
ap.add_argument("--addrs", type=int, default=40)
ap.add_argument("--interval", type=float, default=5.0)
ap.add_argument("--duration", type=float, default=10.0)
ap.add_argument("--reconnect", action="store_true")
a = ap.parse_args()

sel = selectors.DefaultSelector()
conns = {}  # socket -> [opened at, bytes sent, next send time]
figures = {"opened": 0, "closed_by_server": 0, "max_open": 0, "refused": 0}
lifetimes = []


def open_one(i):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.bind(("127.0.1.%d" % (i % a.addrs + 1), 0))
        s.connect_ex((a.host, a.port))
    except OSError:
        figures["refused"] += 1
        s.close()
        return
    now = time.monotonic()
    conns[s] = [now, 0, now]
    sel.register(s, selectors.EVENT_READ)
    figures["opened"] += 1


for i in range(a.n):
    open_one(i)
end = time.monotonic() + a.duration
while time.monotonic() < end:
    for key, _ in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # the server closed it
            lifetimes.append(time.monotonic() - conns[s][0])
            figures["closed_by_server"] += 1
            sel.unregister(s)
            del conns[s]
            s.close()
            if a.reconnect:
                open_one(figures["opened"])
    now = time.monotonic()
    for s, c in list(conns.items()):
        if c[2] <= now and c[1] < len(HELLO):
            try:
                s.send(HELLO[c[1]:c[1] + 1])
                c[1] += 1
            except OSError:
                pass
            c[2] = now + a.interval
    figures["max_open"] = max(figures["max_open"], len(conns))
figures["open_at_end"] = len(conns)
figures["lifetime_p50"] = round(statistics.median(lifetimes), 2) if lifetimes else 0
figures["lifetime_max"] = round(max(lifetimes), 2) if lifetimes else 0
print(" ".join("%s=%s" % kv for kv in figures.items()), flush=True)
