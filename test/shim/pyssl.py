"""Python's ssl module as an unmodified TLS program: libssl comes in through
the dlopen()ed _ssl module, the server sets its own cipher list, the client
sets a session-id context. Usage: pyssl.py server PORT N | client PORT [1.2]"""
import socket
import ssl
import sys

role, port = sys.argv[1], int(sys.argv[2])
if role == "server":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("ECDHE+AESGCM")
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen()
    for _ in range(int(sys.argv[3])):
        conn, _ = srv.accept()
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            tls.recv(100)
            tls.sendall(b"python CSE " + tls.version().encode() + b"\n")
            tls.close()
        except (ssl.SSLError, OSError) as e:
            print("handshake failed:", e, flush=True)
else:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if len(sys.argv) > 3:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    print("client", tls.version(), tls.cipher()[0], flush=True)
