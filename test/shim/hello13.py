#!/usr/bin/env python3
"""A TLS 1.3 ClientHello made by hand, as an attacker without the key sends it:
pre_shared_key naming IDENTITY with a random binder, and the
psk_key_exchange_modes given. Prints what the server answered first:
"serverhello psk=0|1" (it went on, with or without the PSK), "alert N", or
"eof".

usage: hello13.py PORT IDENTITY MODES [SNI]   (MODES: comma-separated numbers,
0 = psk_ke, 1 = psk_dhe_ke; "" sends no PSK at all)
"""
import os
import socket
import struct
import sys


def ext(kind, body):
    return struct.pack("!HH", kind, len(body)) + body


def vec(n, body):  # a TLS vector with an n-byte length
    return len(body).to_bytes(n, "big") + body


def client_hello(identity, modes, sni):
    exts = b""
    if sni:
        name = sni.encode()
        exts += ext(0, vec(2, b"\x00" + vec(2, name)))
    exts += ext(10, vec(2, b"\x00\x1d\x00\x17"))  # x25519, P-256
    exts += ext(13, vec(2, b"\x04\x03\x08\x04\x04\x01\x08\x07"))
    exts += ext(43, vec(1, b"\x03\x04"))  # TLS 1.3 only
    # Any 32 bytes are an X25519 public key.
    exts += ext(51, vec(2, b"\x00\x1d" + vec(2, os.urandom(32))))
    if modes != "":
        exts += ext(45, vec(1, bytes(int(m) for m in modes.split(","))))
        ids = vec(2, vec(2, identity.encode()) + b"\x00\x00\x00\x00")
        binders = vec(2, vec(1, os.urandom(32)))
        exts += ext(41, ids + binders)  # pre_shared_key comes last
    body = (b"\x03\x03" + os.urandom(32) + vec(1, os.urandom(32)) +
            vec(2, b"\x13\x01\x13\x02\x13\x03") + vec(1, b"\x00") + vec(2, exts))
    hs = b"\x01" + vec(3, body)
    return b"\x16\x03\x01" + vec(2, hs)


def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    port, identity, modes = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sni = sys.argv[4] if len(sys.argv) > 4 else ""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(client_hello(identity, modes, sni))
    head = read_exact(s, 5)
    if head is None:
        print("eof")
        return
    rec = read_exact(s, struct.unpack("!H", head[3:5])[0]) or b""
    if head[0] == 0x15:
        print("alert %d" % rec[1])
    elif head[0] == 0x16 and rec[:1] == b"\x02":
        # ServerHello: version, random, session id, suite, compression, extensions
        p = 4 + 2 + 32
        p += 1 + rec[p] + 2 + 1
        end = p + 2 + struct.unpack("!H", rec[p:p + 2])[0]
        p += 2
        psk = 0
        while p + 4 <= end:
            kind, n = struct.unpack("!HH", rec[p:p + 4])
            psk |= kind == 41
            p += 4 + n
        print("serverhello psk=%d" % psk)
    else:
        print("record %d" % head[0])


main()
