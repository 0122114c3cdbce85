"""A stand-in for a CSE behind nginx: records every request it receives, one
JSON line each (method, path, the oneM2M and saef headers), and answers 200
(201 for a POST) with X-M2M-RSC. Usage: backend.py PORT LOGFILE"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        rec = {"method": self.command, "path": self.path, "body": body}
        for h in ("X-M2M-Origin", "X-M2M-RI", "Content-Type", "X-Saef-Entity",
                  "X-Saef-Identity", "X-Saef-Framework", "X-Worker"):
            rec[h] = self.headers.get(h)
        with open(sys.argv[2], "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        out = b'{"m2m:dbg":"backend"}'
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("X-M2M-RSC", "2001" if self.command == "POST" else "2000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = handle_one

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
