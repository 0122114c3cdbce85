#!/usr/bin/env python3
"""bench/report.py DIR: the tables of a bench/run result directory.

Reads raw.csv, servers.csv, instructions.csv and maf-raw.csv; writes
results.csv, maf.csv, the gnuplot data (handshakes.dat, scaling-*.dat, cpu-*.dat) and
summary.txt (Markdown tables, as docs/performance.md quotes them).
"""
import csv
import os
import platform
import statistics
import subprocess
import sys

OUT = sys.argv[1]
PROTOS = ("tls1.2", "tls1.3")


def rows_of(name):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def med(values):
    return statistics.median(values) if values else 0.0


def kind(row):
    return row.rsplit("-", 1)[0] if row != "native" else "native"


raw = rows_of("raw.csv")
servers = {s["row"]: s for s in rows_of("servers.csv")}
order = list(dict.fromkeys(r["row"] for r in raw))
rates, cpus, fails, by_round = {}, {}, {}, {}
for r in raw:
    key = (r["row"], r["protocol"])
    rates.setdefault(key, []).append(float(r["hs_per_s"]))
    cpus.setdefault(key, []).append(float(r["cpu_us_per_hs"]))
    fails[key] = fails.get(key, 0) + int(r["failures"])
    by_round[key + (r["round"],)] = (float(r["hs_per_s"]), float(r["cpu_us_per_hs"]))


def paired(row, v, i, invert=False):
    """Median over rounds of this row against native in the same round."""
    out = []
    for (rw, pv, rnd), vals in by_round.items():
        nat = by_round.get(("native", pv, rnd))
        if rw == row and pv == v and nat and vals[i] and nat[i]:
            out.append(nat[i] / vals[i] if invert else vals[i] / nat[i])
    return round(med(out), 3) if out else ""


results = []
for row in order:
    s = servers.get(row, {})
    for v in PROTOS:
        rs = rates.get((row, v), [])
        if not rs:
            continue
        results.append({
            "row": row, "server": kind(row), "keys": s.get("keys", ""), "protocol": v,
            "rounds": len(rs), "hs_per_s": round(med(rs), 1), "ratio": paired(row, v, 0),
            "spread": round((max(rs) - min(rs)) / med(rs), 3) if med(rs) else "",
            "cpu_us_per_hs": round(med(cpus[(row, v)]), 1),
            "cpu_ratio": paired(row, v, 1, invert=True),
            "failures": fails[(row, v)], "rss_kb": s.get("rss_kb", ""),
            "start_ms": s.get("start_ms", ""), "new_key_ms": s.get("new_key_ms", ""),
            "note": s.get("note", ""),
        })
skipped = [s for s in servers.values() if s["row"] not in order]

cols = list(results[0].keys()) if results else []
with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    w.writerows(results)

# Plot data: one bar pair per row; hs/s against keys per server kind.
with open(os.path.join(OUT, "handshakes.dat"), "w") as f:
    for row in order:
        f.write("%s %s\n" % (row, " ".join(
            str(med(rates.get((row, v), [0]))) for v in PROTOS)))
kinds = [k for k in ("saef", "stunnel", "mosquitto", "mosquitto+saef", "gnutls")
         if any(kind(r) == k for r in order)]
sizes = sorted({int(servers[r]["keys"]) for r in order if kind(r) in kinds})
for what, series in (("scaling", rates), ("cpu", cpus)):
    for v in PROTOS:
        with open(os.path.join(OUT, "%s-%s.dat" % (what, v)), "w") as f:
            f.write("keys native %s\n" % " ".join(kinds))
            for n in sizes:
                vals = [med(series.get(("%s-%d" % (k, n), v), [])) or "NaN" for k in kinds]
                f.write("%d %s %s\n" % (n, med(series.get(("native", v), [])),
                                         " ".join(str(x) for x in vals)))

# Instructions per handshake: deterministic, so one pair of runs is enough.
instr = rows_of("instructions.csv")
ins = {(i["row"], i["protocol"]): int(i["instructions_per_hs"]) for i in instr}

# MAF figures.
maf_raw = rows_of("maf-raw.csv")


def maf(fig, proto=None):
    return [float(m["value"]) for m in maf_raw
            if m["figure"] == fig and (proto is None or m["protocol"] == proto) and m["value"]]


maf_rows = []
if maf_raw:
    first, cached = med(maf("first_handshake_us")), med(maf("cached_handshake_us"))
    maf_rows += [("first MAF handshake, B retrieves Kc (p50 of %d)"
                  % len(maf("first_handshake_us")), "%.0f µs" % first),
                 ("the same Kc again, cached in B's store", "%.0f µs" % cached),
                 ("added by the retrieval", "%.0f µs" % (first - cached))]
    for v in PROTOS:
        ms, ps = maf("cached_maf_hs_per_s", v), maf("preprovisioned_hs_per_s", v)
        pairs = [a / b for a, b in zip(ms, ps) if b]
        maf_rows += [("cached MAF / pre-provisioned handshakes, %s (median of %d paired rounds)"
                      % (v, len(pairs)),
                      "%.3f (%.0f/s vs %.0f/s)" % (med(pairs), med(ms), med(ps)))]
    for v in PROTOS:
        m, p = med(maf("cached_maf_instructions_per_hs", v)), med(
            maf("preprovisioned_instructions_per_hs", v))
        if m and p:
            maf_rows += [("the same in instructions per handshake (pre-provisioned / cached), %s"
                          % v, "%.4f ({:,.0f} vs {:,.0f})".format(p, m) % (p / m))]
    for v in PROTOS + ("dtls1.2",):
        if maf("registrations_per_s", v):
            maf_rows += [("saef-mafd key registrations per second, %s (failures: %d)"
                          % ("CoAP over DTLS 1.2" if v == "dtls1.2" else "HTTPS over " + v,
                             sum(maf("registration_failures", v))),
                          "%.0f/s" % med(maf("registrations_per_s", v)))]
    full, empty = maf("registrations_per_s_full", "tls1.2"), maf("registrations_per_s_empty", "tls1.2")
    pairs = [a / b for a, b in zip(full, empty) if b]
    if pairs:
        maf_rows += [("key registrations per second with %d registrations of other clients in the "
                      "registry / with none, tls1.2 (median of %d paired rounds)"
                      % (maf("registry_fill")[0], len(pairs)),
                      "%.3f (%.0f/s vs %.0f/s)" % (med(pairs), med(full), med(empty)))]
with open(os.path.join(OUT, "maf.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["figure", "value"])
    w.writerows(maf_rows)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), "?")
out = ["# bench/run results (%s)" % os.path.basename(OUT.rstrip("/")), "",
       "Machine: %s vCPUs, %s, Linux %s, %s." % (os.cpu_count(), cpu, platform.release(),
                                                 sh(["openssl", "version"])),
       "Rates and CPU: medians of %s alternating rounds; ratios: median over the rounds of "
       "this row against native in the same round." % (results[0]["rounds"] if results else 0),
       "Native spread, (max - min) / median over the rounds: %s." % ", ".join(
           "%s %s" % (r["protocol"], r["spread"]) for r in results if r["row"] == "native"),
       "", "| server | keys | protocol | hs/s | ratio to native | server CPU µs/hs | "
       "native CPU / this | RSS MB | start ms | new key ms | failures |",
       "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in results:
    rss = "%.1f" % (int(r["rss_kb"]) / 1024) if r["rss_kb"] else ""
    out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        r["server"], "{:,}".format(int(r["keys"])) if r["keys"] else "", r["protocol"],
        "{:,.0f}".format(r["hs_per_s"]), r["ratio"], r["cpu_us_per_hs"], r["cpu_ratio"], rss,
        r["start_ms"], r["new_key_ms"] or r["note"], r["failures"]))
for s in skipped:
    out.append("| %s | | | | | | | | | %s | |" % (s["row"], s["note"]))
# The mosquitto plugin against mosquitto's own psk_file, paired per round:
# the plugin at each key count over psk_file at the fewest keys.
mq = sorted((int(servers[r]["keys"]), r) for r in order if kind(r) == "mosquitto")
mqs = sorted((int(servers[r]["keys"]), r) for r in order if kind(r) == "mosquitto+saef")
if mq and mqs:
    out += ["", "mosquitto with saef-mosquitto.so against mosquitto's psk_file at %s key(s), "
            "connections per second (median over rounds of the paired ratio):" % mq[0][0], "",
            "| plugin keys | protocol | plugin / psk_file |", "|---:|---|---:|"]
    for n, row in mqs:
        for v in PROTOS:
            rs = [by_round[(row, v, rnd)][0] / base[0]
                  for (rw, pv, rnd), base in by_round.items()
                  if rw == mq[0][1] and pv == v and base[0] and (row, v, rnd) in by_round]
            if rs:
                out.append("| {:,} | %s | %.3f |".format(n) % (v, med(rs)))
    base = {v: ins.get((mq[0][1], v)) for v in PROTOS}
    if any((row, v) in ins for _, row in mqs for v in PROTOS) and any(base.values()):
        out += ["", "The same in instructions per connection (cachegrind, marginal; psk_file "
                "at %s key(s) / plugin):" % mq[0][0], "",
                "| plugin keys | protocol | psk_file | plugin | psk_file / plugin |",
                "|---:|---|---:|---:|---:|"]
        for n, row in mqs:
            for v in PROTOS:
                me = ins.get((row, v))
                if me and base[v]:
                    out.append("| {:,} | %s | {:,} | {:,} | %.4f |".format(n, base[v], me) % (
                        v, base[v] / me))
if ins:
    out += ["", "Instructions per handshake (cachegrind, marginal over two -naccept counts):",
            "", "| server | protocol | instructions/hs | native / this |", "|---|---|---:|---:|"]
    for i in instr:
        n = ins.get(("native", i["protocol"]))
        me = int(i["instructions_per_hs"])
        out.append("| %s | %s | {:,} | %s |".format(me) % (
            i["row"], i["protocol"], "%.4f" % (n / me) if n and me else ""))
if maf_rows:
    out += ["", "MAF-based SAEF:", "", "| figure | value |", "|---|---:|"]
    out += ["| %s | %s |" % m for m in maf_rows]
with open(os.path.join(OUT, "summary.txt"), "w") as f:
    f.write("\n".join(out) + "\n")
