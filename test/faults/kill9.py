#!/usr/bin/env python3
"""kill -9 loops against saef's writers (run by test/faults/kill.sh).

  kill9.py import STORE ROUNDS KEYS   saef-key import killed at random moments
  kill9.py add STORE ROUNDS           saef-key add killed at random moments
  kill9.py mafd DIR ROUNDS            saef-mafd killed during registrations

Each prints "ok   - ..." / "FAIL - ..." lines like test/lib.sh, a "figures:"
line, and exits with the number of failures. Every process it starts runs
under a time limit and is killed on the way out.
"""
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time

FAILS = 0
LIMIT = 60  # seconds any one child may run
# Programs this script kills -9 check no leaks in a sanitized build: a kill
# that lands during the exit-time leak check leaves a half-written report.
KILLED_ENV = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")


def check(desc, ok, detail=""):
    global FAILS
    print(("ok   - " if ok else "FAIL - ") + desc + ("" if ok else " " + detail), flush=True)
    if not ok:
        FAILS += 1
    return ok


def run(*args, stdin=None):
    """Runs a command to completion: (exit status, stdout, stderr)."""
    p = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=LIMIT)
    return p.returncode, p.stdout, p.stderr


def killed_at(args, delay, **kw):
    """Starts args, SIGKILLs it after delay seconds unless it ended: (rc, killed)."""
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=KILLED_ENV, **kw)
    try:
        p.wait(timeout=delay)
        return p.returncode, False
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=LIMIT)
        return p.returncode, True


def key_of(store, ktype, ident):
    """The key's hex, None if absent; raises if the store does not open."""
    rc, out, err = run("saef-key", "-s", store, "show", ktype, ident, "--reveal", "--key-only")
    if rc == 1:
        return None
    if rc != 0:
        raise RuntimeError("saef-key show %s: exit %d: %s" % (ident, rc, err.strip()))
    return out.strip()


def listing(store):
    """{identity: type} of every record; None if the store does not open or a
    record does not decode (list reads and checks every one)."""
    rc, out, _ = run("saef-key", "-s", store, "list")
    if rc != 0:
        return None
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    return {r[1]: r[0] for r in rows}


def values(prefix_keys):
    """New random values for the same identities."""
    return {i: secrets.token_hex(32).upper() for i in prefix_keys}


def write_psk(path, keys):
    with open(path, "w") as f:
        f.writelines("%s:%s\n" % kv for kv in keys.items())


def exported(store):
    """{identity: key hex} of every kpsa record; None if the store does not open."""
    rc, out, _ = run("saef-key", "-s", store, "export")
    if rc != 0:
        return None
    return dict(line.split(":", 1) for line in out.splitlines())


def timed(args):
    start = time.monotonic()
    rc, _, err = run(*args)
    if rc != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), rc, err.strip()))
    return time.monotonic() - start


def scenario_import(store, rounds, n):
    """Each round replaces the values of the same n keys with one import
    --replace, killed at a random moment of its run: the store always opens
    and holds every old value or every new one, and the other keys as before."""
    f = os.path.join(os.path.dirname(store), "round.psk")
    base = values("base-%03d@sp.example.com" % i for i in range(100))
    write_psk(f, base)
    timed(["saef-key", "-s", store, "import", f])
    old = values("imp-%06d@sp.example.com" % i for i in range(n))
    write_psk(f, old)
    full = timed(["saef-key", "-s", store, "import", f])
    stats = {"old": 0, "new-after-kill": 0, "completed": 0, "bad": 0}
    for r in range(rounds):
        new = values(old)
        write_psk(f, new)
        if r % 10 == 9:
            # The store grows its free lists: time a whole run again, so the
            # kills keep landing from the start to past the commit.
            full = timed(["saef-key", "-s", store, "import", "--replace", f])
            old = new
            new = values(old)
            write_psk(f, new)
        rc, killed = killed_at(["saef-key", "-s", store, "import", "--replace", f],
                               random.uniform(0.3 * full, 1.3 * full))
        got = exported(store)
        if got is None:
            kind = "store did not open"
        elif any(got.get(i) != v for i, v in base.items()) or len(got) != len(base) + n:
            kind = "other keys changed"
        elif all(got[i] == v for i, v in new.items()):
            kind = "new-after-kill" if killed else "completed"
            old = new
        elif all(got[i] == v for i, v in old.items()) and killed:
            kind = "old"
        else:
            kind = "part of the import"
        stats[kind if kind in stats else "bad"] += 1
        if kind not in stats:
            check("round %d: %s (rc %s)" % (r, kind, rc), False)
    check("saef-key import --replace of %d keys killed at random %d times: the store always "
          "opened, all old or all new values, never part" % (n, rounds), stats["bad"] == 0)
    check("  ... kills landed before and after the commit",
          stats["old"] > 0 and stats["completed"] + stats["new-after-kill"] > 0, str(stats))
    print("     figures: import kill -9 rounds=%d keys_per_import=%d full_run=%.3fs "
          "old=%d new_after_kill=%d completed=%d bad=%d"
          % (rounds, n, full, stats["old"], stats["new-after-kill"], stats["completed"],
             stats["bad"]))


def scenario_add(store, rounds):
    """saef-key add, killed at random: every add that exited 0 is there with
    its key; a killed one is there with its key or not at all."""
    full = timed(["saef-key", "-s", store, "add", "kpsa", "probe@sp.example.com",
                  "--hex", secrets.token_hex(16)])
    done, killed_ids, keys = [], [], {}
    broken = 0
    for i in range(rounds):
        ident = "add-%05d@sp.example.com" % i
        keys[ident] = secrets.token_hex(16).upper()
        rc, killed = killed_at(["saef-key", "-s", store, "add", "kpsa", ident,
                                "--hex", keys[ident]],
                               random.uniform(0.2 * full, 1.5 * full))
        if killed:
            killed_ids.append(ident)
        elif rc == 0:
            done.append(ident)
        else:
            broken += 1
            check("add %s exited %d without a kill" % (ident, rc), False)
        if i % 10 == 9 and listing(store) is None:
            broken += 1
            check("the store opens after %d adds" % (i + 1), False)
    ids = listing(store)
    check("saef-key add killed at random %d of %d times: the store opens"
          % (len(killed_ids), rounds), ids is not None and broken == 0)
    ids = ids or {}
    lost = [i for i in done if i not in ids or key_of(store, "kpsa", i) != keys[i]]
    check("  ... every add that returned 0 is there with its key (%d)" % len(done), not lost,
          str(lost[:5]))
    half = [i for i in killed_ids if i in ids and key_of(store, "kpsa", i) != keys[i]]
    check("  ... a killed add is there whole or not at all", not half, str(half[:5]))
    check("  ... the kills hit before and after the commit",
          0 < sum(i in ids for i in killed_ids) < len(killed_ids) or rounds < 20)
    print("     figures: add kill -9 rounds=%d killed=%d killed_but_committed=%d returned_0=%d "
          "lost=%d" % (rounds, len(killed_ids), sum(i in ids for i in killed_ids), len(done),
                       len(lost)))


def wait_port(port, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def scenario_mafd(d, rounds):
    """saef-mafd killed -9 at random while two clients register keys: every
    registration answered 201 is in the MAF's store after the restart, with
    the key the client derived; the store always opens."""
    maf, a = os.path.join(d, "maf.db"), os.path.join(d, "a.db")
    port = int(os.environ["MAF_PORT"])
    url = "https://127.0.0.1:%d" % port
    log = open(os.path.join(d, "mafd.log"), "a")
    proc = [None]

    def start():
        proc[0] = subprocess.Popen(["timeout", "-s", "KILL", str(LIMIT * 5), "saef-mafd",
                                    "--store", maf, "--fqdn", "maf.example.com",
                                    "--listen", "127.0.0.1:%d" % port,
                                    # registrations as fast as they go: no quota
                                    "--max-reg-rate", "1000000"], stdout=log, stderr=log,
                                   env=KILLED_ENV)
        return wait_port(port)

    def kill():
        # timeout(1) passes SIGKILL on to the daemon only by dying itself:
        # kill the daemon, its child.
        kids = subprocess.run(["pgrep", "-P", str(proc[0].pid)], capture_output=True,
                              text=True).stdout.split()
        for k in kids:
            os.kill(int(k), 9)
        proc[0].wait(timeout=LIMIT)

    answered, failed, stop = [], [0], threading.Event()

    def client():
        while not stop.is_set():
            rc, out, _ = run("saef-maf", "-s", a, "register", "--maf", url, "--target",
                             "//sp.example.com/in-cse", "--expires", "+1h")
            if rc == 0:
                answered.append(out.split("\t")[0].strip())
            else:
                failed[0] += 1
                time.sleep(0.02)

    check("saef-mafd starts", start())
    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    opened = 0
    try:
        for _ in range(rounds):
            time.sleep(random.uniform(0.2, 1.0))
            kill()
            opened += listing(maf) is not None
            if not start():
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=LIMIT)
        kill()
    check("saef-mafd killed -9 %d times during registrations: its store opened each time"
          % rounds, opened == rounds)
    ids = listing(maf) or {}
    lost = [k for k in answered if k not in ids]
    check("  ... every registration answered 201 (%d) is in the MAF's store" % len(answered),
          answered and not lost, str(lost[:5]))
    wrong = [k for k in answered if k in ids and key_of(maf, "kc", k) != key_of(a, "kc", k)]
    check("  ... with the key the client derived", not wrong, str(wrong[:5]))
    print("     figures: mafd kill -9 rounds=%d registrations_answered=%d failed_during_kills=%d "
          "lost=%d" % (rounds, len(answered), failed[0], len(lost)))


def main():
    what, where, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if what == "import":
        scenario_import(where, rounds, int(sys.argv[4]))
    elif what == "add":
        scenario_add(where, rounds)
    else:
        scenario_mafd(where, rounds)
    sys.exit(FAILS)


if __name__ == "__main__":
    main()
