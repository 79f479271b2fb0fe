#!/usr/bin/env python3
"""seeds.py OUT_DIR CONFORMANCE_DIR SOURCE_DIR - seed corpora for tests/fuzz.

Writes OUT_DIR/<target>/seed-N, one input per file, from the external test
data read in place (../shared/conformance) and the project's own files:
  fuzz_dmarc_record   every "v=DMARC1..." string of the DMARC data sets
  fuzz_auth_results   every string of the Authentication-Results data sets
  fuzz_from_header    the From field bodies of every .eml (unfolded)
  fuzz_config         conf/dmarc-milter.conf, Debian's opendmarc.conf and
                      its sample's example lines (when unpacked)
"""
import gzip
import json
import os
import pathlib
import sys


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def write(out, target, items):
    d = pathlib.Path(out) / target
    d.mkdir(parents=True, exist_ok=True)
    n = 0
    for item in dict.fromkeys(items):  # distinct, in order
        data = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else item
        (d / ("seed-%d" % n)).write_bytes(data)
        n += 1
    print("seeds: %s: %d" % (target, n))


def from_bodies(path):
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    field = None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and field is not None:
            field += " " + line.strip()
            continue
        if field is not None:
            yield field
            field = None
        if line.lower().startswith("from:"):
            field = line[5:].strip()
    if field is not None:
        yield field


def main():
    out, conf, src = sys.argv[1:4]
    conf, src = pathlib.Path(conf), pathlib.Path(src)
    records = []
    for f in sorted((conf / "dmarc").glob("*.json")):
        records += [s for s in strings(json.loads(f.read_text())) if s.lower().startswith("v=dmarc")]
    write(out, "fuzz_dmarc_record", records)
    ar = []
    for f in sorted((conf / "authres").glob("*.json")):
        ar += [s for s in strings(json.loads(f.read_text())) if len(s) > 3]
    write(out, "fuzz_auth_results", ar)
    froms = []
    for base in (conf, src / "tests" / "data"):
        for f in sorted(base.rglob("*.eml")):
            froms += list(from_bodies(f))
    write(out, "fuzz_from_header", froms)
    configs = [(src / "conf" / "dmarc-milter.conf").read_bytes()]
    unpacked = pathlib.Path(os.environ.get("DMARC_TEST_UNPACKED", "/var/cache/dmarc-milter-tests")) / "root"
    odc = unpacked / "etc" / "opendmarc.conf"
    if odc.exists():
        configs.append(odc.read_bytes())
    sample = unpacked / "usr/share/doc/opendmarc/opendmarc.conf.sample.gz"
    if sample.exists():
        lines = [l[2:] for l in gzip.decompress(sample.read_bytes()).decode().split("\n")
                 if l.startswith("# ") and l[2:3].isupper()]
        configs.append("\n".join(lines).encode())
    write(out, "fuzz_config", configs)


main()
