#!/usr/bin/env python3
"""A fake MAF that has no PSK: HTTPS with a self-signed certificate only.
It logs each handshake ("handshake TLSv1.3 CIPHER") and each request it gets
("request METHOD PATH"), and answers as a MAF would: a key registration with
201, a key retrieval with 200 and the key KEYHEX (one its owner knows).

usage: fakemaf.py PORT CERT KEY KEYHEX SOURCE [MAXVERSION]   (MAXVERSION: 1.2)
"""
import datetime
import http.server
import json
import socket
import ssl
import sys

port, cert, key, keyhex, source = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
if len(sys.argv) > 6 and sys.argv[6] == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2


def log(line):
    print(line, flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def setup(self):
        # The handshake happens here, so that its outcome is logged.
        raw = self.request
        try:
            self.request = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"handshake failed: {e}")
            raw.close()
            raise
        log(f"handshake {self.request.version()} {self.request.cipher()[0]}")
        super().setup()

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_any(self):
        log(f"request {self.command} {self.path}")
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        exp = later.strftime("%Y%m%dT%H%M%S")
        if self.path.endswith("/keyRetrieve"):
            self.answer(200, {"keyValue": keyhex, "expirationTime": exp, "SUID": 32,
                              "sourceMAFClientID": source})
        elif self.path.endswith("/keyReg"):
            self.answer(201, {"relativeKeyID": "0" * 32, "expirationTime": exp})
        else:
            self.answer(200, {})

    do_GET = do_POST = do_PUT = do_DELETE = do_any

    def log_message(self, *args):
        pass


class Server(http.server.HTTPServer):
    address_family = socket.AF_INET

    def handle_error(self, request, client_address):
        pass  # a failed handshake is logged above


Server(("127.0.0.1", int(port)), Handler).serve_forever()
