#!/usr/bin/env python3
"""memscan.py PID HEXKEY...: looks for copies of each key in the writable
memory of a live process (heap, stacks, anonymous and private mappings).

A key is looked for in halves, as raw bytes and as hex text in upper and
lower case, so that a freed buffer whose first bytes the allocator reused
still counts. A raw copy inside a record in the store's encoding (version
1, flags 0, the key length, 24 bytes later the key) is a page LMDB wrote
and keeps for reuse: it is reported as "stored", everything else as
"copy". Prints one line per finding, "FORM KIND ADDRESS MAPPING", and the
totals "copies=N stored=N"; exits 1 if there was a copy."""
import re
import sys


def regions(pid):
    with open("/proc/%s/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip() if len(parts) > 5 else "[anon]"
            # The store itself is a read-only shared map: not a copy. Regions
            # of many GiB are reservations (a sanitizer's shadow memory).
            if ("w" in parts[1] and "p" in parts[1] and not name.startswith("[vvar") and
                    hi - lo < 1 << 32):
                yield lo, hi, name


def needles(hexkey):
    raw = bytes.fromhex(hexkey)
    half = len(raw) // 2
    for form, text in (("raw", raw), ("HEX", raw.hex().upper().encode()),
                       ("hex", raw.hex().encode())):
        cut = half if form == "raw" else 2 * half
        yield form, text[:cut], raw, 0
        yield form, text[cut:], raw, cut


def stored(data, at, raw, off):
    """A raw half at `at` that is part of an encoded record holding raw."""
    start = at - off
    hdr = start - 28
    return (hdr >= 0 and data[start:start + len(raw)] == raw and data[hdr] == 1 and
            data[hdr + 1] == 0 and int.from_bytes(data[hdr + 2:hdr + 4], "little") == len(raw))


def main():
    pid, keys = sys.argv[1], sys.argv[2:]
    copies = kept = 0
    with open("/proc/%s/mem" % pid, "rb", 0) as mem:
        for lo, hi, name in regions(pid):
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for k in keys:
                for form, n, raw, off in needles(k):
                    for m in re.finditer(re.escape(n), data):
                        s = form == "raw" and stored(data, m.start(), raw, off)
                        kept += s
                        copies += not s
                        print("%s %s 0x%x %s" % (form, "stored" if s else "copy",
                                                 lo + m.start(), name))
    print("copies=%d stored=%d" % (copies, kept))
    sys.exit(1 if copies else 0)


if __name__ == "__main__":
    main()
