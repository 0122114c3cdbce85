"""A oneM2M request/response exchange over MQTT (TS-0010) with paho, TLS-PSK
from saef-run (Python's ssl has no PSK of its own before 3.13).
Usage: onem2m_mqtt.py cse PORT CSE-ID SECONDS | ae PORT AE-ID CSE-ID
  cse: answers every request and registration request addressed to CSE-ID.
  ae:  registers (reg_req), then sends one request (req); prints what came
       back and exits 0 when both responses came and nothing else did."""
import json
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt


def topic_id(i):
    # TS-0010: an ID in a topic level has its '/' written as ':'.
    return i.replace("/", ":")


role, port, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = mqtt.Client(client_id=role + "-" + topic_id(me), protocol=mqtt.MQTTv311)
c.tls_set_context(ctx)
subacks = {}
got = []
ready = threading.Event()


def on_subscribe(client, userdata, mid, granted):
    subacks[mid] = granted
    if len(subacks) == 2:
        ready.set()


def on_message(client, userdata, msg):
    body = json.loads(msg.payload)
    if role == "cse":
        # The response goes where the request's originator listens:
        # /oneM2M/resp/<originator>/<receiver>/<format> (reg_resp alike).
        kind, orig, recv, fmt = msg.topic.split("/")[2:6]
        resp = {"rsc": 2001 if kind == "reg_req" else 2000, "rqi": body["rqi"],
                "to": body["fr"], "fr": me}
        client.publish("/oneM2M/%s/%s/%s/%s" % ("reg_resp" if kind == "reg_req" else "resp",
                                                orig, recv, fmt), json.dumps(resp))
        print("answered", body["rqi"], "from", body["fr"], "on", msg.topic, flush=True)
    else:
        got.append((msg.topic, body))


c.on_subscribe = on_subscribe
c.on_message = on_message
c.connect("127.0.0.1", port)
c.loop_start()
if role == "cse":
    c.subscribe([("/oneM2M/req/+/%s/+" % topic_id(me), 0)])
    c.subscribe([("/oneM2M/reg_req/+/%s/+" % topic_id(me), 0)])
    ready.wait(5)
    print("cse subscribed", [g for s in subacks.values() for g in s], flush=True)
    time.sleep(float(sys.argv[4]))
    sys.exit(0)

cse = sys.argv[4]
o, r = topic_id(me), topic_id(cse)
c.subscribe([("/oneM2M/reg_resp/%s/+/json" % o, 0)])
c.subscribe([("/oneM2M/resp/%s/+/json" % o, 0)])
if not ready.wait(5) or any(g == 128 for s in subacks.values() for g in s):
    print("ae subscriptions refused", subacks, flush=True)
    sys.exit(1)
print("ae subscribed", flush=True)
# The test forges a response to this AE meanwhile: it must never arrive.
time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 0)
c.publish("/oneM2M/reg_req/%s/%s/json" % (o, r),
          json.dumps({"op": 1, "to": cse, "fr": me, "rqi": "reg-1", "ty": 2,
                      "pc": {"m2m:ae": {"api": "Nsaef-test", "rr": False}}}))
c.publish("/oneM2M/req/%s/%s/json" % (o, r),
          json.dumps({"op": 2, "to": cse, "fr": me, "rqi": "req-1"}))
deadline = time.time() + 5
while len(got) < 2 and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.5)  # anything else that would come
for t, b in got:
    print("ae got", t, b.get("rqi"), b.get("rsc"), flush=True)
ok = sorted((t.split("/")[2], b.get("rqi"), b.get("rsc")) for t, b in got) == \
    [("reg_resp", "reg-1", 2001), ("resp", "req-1", 2000)]
print("ae exchange", "complete" if ok else "wrong", flush=True)
sys.exit(0 if ok else 1)
