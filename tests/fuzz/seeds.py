#!/usr/bin/env python3
"""seeds.py OUT_DIR CONFORMANCE_DIR SOURCE_DIR - seed corpora for tests/fuzz.

Writes OUT_DIR/<target>/seed-N, one input per file, from the external test
data read in place (../shared/conformance) and the project's own files:
  fuzz_dmarc_record   every "v=DMARC1..." string of the DMARC data sets
  fuzz_auth_results   every string of the Authentication-Results data sets
  fuzz_from_header    the From field bodies of every .eml (unfolded)
  fuzz_config         conf/dmarc-milter.conf, Debian's opendmarc.conf and
                      its sample's example lines (when unpacked)
  fuzz_session        every .eml as a milter transaction (fuzz_session.cpp's
                      format), from a client inside and outside the SPF
                      ranges, plus the From rewritten to the p=reject domain
  fuzz_dkim           the signed messages of the DKIM data sets with their key
                      records (stalwart, RFC 8463, Mail::DKIM's FAKE_DNS.dat,
                      tests/data/dkim and its keys), and each key record
                      alone as the answer for every selector
  fuzz_spf            every test of the RFC 7208 / 4408 / pyspf suites with its
                      zonedata (fuzz_spf.cpp's format)
  fuzz_report         failure reports: the header sections and From domains
                      of the failure samples and every .eml; aggregate
                      reports: the domains and names of the aggregate
                      samples' XML (FuzzedDataProvider strings)
  fuzz_store          the same samples' domains, addresses and names as rows
                      written through the Store and as raw rows
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


RS, GS = b"\x1e", b"\x1d"


def esc(b):
    return b.replace(GS, GS + GS).replace(RS, GS + RS)


def split_eml(data):
    """header fields (name, value as libmilter gives them) and CRLF body."""
    data = data.replace(b"\r\n", b"\n")
    head, _, body = data.partition(b"\n\n")
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b"\r\n" + line
        elif b":" in line:
            n, _, v = line.partition(b":")
            fields.append([n, v])
    return fields, body.replace(b"\n", b"\r\n")


def session_input(opts, ip, helo, mail_from, fields, body):
    parts = [ip, helo, mail_from, b""] + [n + b":" + v for n, v in fields] + [b""]
    parts += [body[i:i + 1000] for i in range(0, len(body), 1000)] or [b""]
    return bytes([opts]) + RS.join(esc(p) for p in parts)


def session_seeds(conf, src):
    out = []
    emls = sorted(conf.rglob("*.eml")) + sorted((src / "tests" / "data").rglob("*.eml"))
    for n, f in enumerate(emls):
        fields, body = split_eml(f.read_bytes())
        out.append(session_input(n % 4, b"203.0.113.5", b"mx.example.net", b"bounce@example.net", fields, body))
        spoof = [[k, b" Alice <alice@reject.example>"] if k.lower() == b"from" else [k, v] for k, v in fields]
        out.append(session_input((n + 1) % 4 | (0x20 if n % 3 == 0 else 0), b"192.0.2.10", b"mail.reject.example",
                                 b"alice@reject.example" if n % 2 else b"", spoof, body))
    fixture = [[b"From", b" Alice <alice@reject.example>"], [b"To", b" bob@test.example"], [b"Subject", b" hi"]]
    out.append(session_input(0, b"192.0.2.10", b"mail.reject.example", b"alice@reject.example", fixture, b"Hello\r\n"))
    out.append(session_input(0, b"198.51.100.7", b"helo.reject.example", b"", fixture, b"Hello\r\n"))
    out.append(session_input(2, b"::1", b"localhost", b"x@none.example", fixture, b"Hello\r\n")
               + RS + b"EOM" + RS + b"y@broken.example" + RS + b"auth" + RS + b"From: <y@broken.example>")
    return out


def dkim_input(opts, dns, data):
    fields, body = split_eml(data)
    parts = [dns] + [n + b":" + v for n, v in fields] + [b""]
    parts += [body[i:i + 700] for i in range(0, len(body), 700)] or [b""]
    return bytes([opts]) + RS.join(esc(p) for p in parts)


def dkim_seeds(conf, src):
    out = []
    dk = conf / "dkim"
    for f in sorted((dk / "stalwart-mail-auth" / "dkim").glob("*.txt")):
        dns, _, msg = f.read_bytes().partition(b"\n\n")
        out.append(dkim_input(0, dns, msg))
    out.append(dkim_input(0, (dk / "rfc8463" / "rfc8463-A2-dns.txt").read_bytes(),
                          (dk / "rfc8463" / "rfc8463-A3-signed.eml").read_bytes()))
    fake = [l for l in (dk / "mail-dkim-corpus" / "FAKE_DNS.dat").read_bytes().split(b"\n")
            if l.strip() and not l.startswith(b"#")]
    for f in sorted((dk / "mail-dkim-corpus").glob("*.txt")):
        msg = f.read_bytes()
        lines = []
        for l in fake:
            sel, _, dom = l.split(None, 1)[0].partition(b"._domainkey.")
            if sel.lower() in msg.lower() and dom.lower() in msg.lower():
                lines.append(b" ".join(l.split(None, 1)))
        out.append(dkim_input(len(out) % 4 if len(out) % 5 == 0 else 0, b"\n".join(lines), msg))
    keys = src / "tests" / "data" / "dkim" / "keys"
    records = {k.stem: k.read_bytes().strip() for k in sorted(keys.glob("*.txt"))}
    own = b"\n".join(b"%s._domainkey.dkim.example %s" % (k.encode(), v) for k, v in records.items())
    msgs = sorted((src / "tests" / "data" / "dkim").rglob("*.eml"))
    for f in msgs:
        out.append(dkim_input(0, own, f.read_bytes()))
    for n, (k, v) in enumerate(records.items()):
        out.append(dkim_input(4 | (n % 4 if n % 3 == 0 else 0), b"* " + v, msgs[n % len(msgs)].read_bytes()))
    return out


def spf_seeds(conf):
    import yaml
    out = []
    for name in ("rfc7208-tests.yml", "rfc4408-tests.yml", "pyspf-test.yml"):
        path = conf / "spf" / name
        if not path.exists():
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            rrs = []
            for dom, items in (doc.get("zonedata") or {}).items():
                has_txt = any(isinstance(i, dict) and "TXT" in i for i in items or [])
                for item in items or []:
                    if item == "TIMEOUT":
                        rrs.append("%s TIMEOUT" % dom)
                        continue
                    if not isinstance(item, dict):
                        continue
                    for typ, val in item.items():
                        if typ == "SPF":
                            if has_txt:
                                continue
                            typ = "TXT"
                        if val == "NONE":
                            continue
                        if isinstance(val, list):
                            val = " ".join(str(v) for v in val) if typ == "MX" else "".join(str(v) for v in val)
                        rrs.append("%s %s %s" % (dom, typ, val))
            for n, t in enumerate((doc.get("tests") or {}).values()):
                parts = [str(t.get("host", "")), str(t.get("helo", "")), str(t.get("mailfrom", ""))] + rrs
                data = [p.encode("utf-8", "surrogateescape") for p in parts]
                out.append(bytes([len(out) % 3]) + RS.join(esc(p) for p in data))
    return out


def fdp(strings, tail):
    """FuzzedDataProvider input: strings from the front, numbers from the end."""
    return b"".join(x.replace(b"\\", b"\\\\") + b"\\ " for x in strings) + tail


def report_seeds(conf, src):
    import re
    out = []
    emls = sorted((conf / "failure-samples").rglob("*.eml")) + sorted(conf.rglob("*.eml"))[:20] + \
        sorted((src / "tests" / "data").rglob("*.eml"))
    for n, f in enumerate(dict.fromkeys(emls)):
        data = f.read_bytes().replace(b"\r\n", b"\n")
        head = data.split(b"\n\n", 1)[0]
        dom = re.search(rb"^From:.*@([^>\s]+)", head, re.M | re.I)
        dom = dom.group(1) if dom else b"example.com"
        strings = [b"mail." + dom, b"bounce@" + dom, b"QID%d" % n, b"Alice <alice@" + dom + b">", dom, b"sel",
                   dom, b"bounce@" + dom, dom, dom, dom, b"sel", dom,
                   b" mx.test.example; spf=fail smtp.mailfrom=" + dom, b"dmarc-milter/0.1", b"Mon, 7 Dec 2026 20:00:00 +0000",
                   b"Example Org", b"<" + dom + b">", b"text of the report", head]
        out.append(fdp(strings, bytes([n % 7, n % 3, 1])))
    xmls = sorted((conf / "aggregate-samples").rglob("*.xml")) + sorted((conf / "schema").glob("*.xml"))
    for n, f in enumerate(xmls):
        text = f.read_bytes()
        def tag(t):
            m = re.search(rb"<" + t + rb">([^<]*)</" + t + rb">", text)
            return m.group(1) if m else b""
        strings = [tag(b"org_name"), tag(b"email"), tag(b"extra_contact_info"), tag(b"report_id"), b"", tag(b"domain"),
                   tag(b"fo") or b"0", tag(b"header_from"), tag(b"envelope_from"), tag(b"envelope_to"), b"comment",
                   tag(b"domain"), tag(b"selector")]
        out.append(fdp(strings, bytes([n % 5, 2, n % 3, 0])))
    return out


def store_seeds(conf):
    import re
    out = []
    xmls = sorted((conf / "aggregate-samples").rglob("*.xml")) + sorted((conf / "schema").glob("*.xml"))
    for n, f in enumerate(xmls):
        text = f.read_bytes()
        vals = re.findall(rb"<(?:domain|header_from|envelope_from|source_ip|org_name|report_id|selector|email|comment)>"
                          rb"([^<]*)<", text)[:40]
        if not vals:
            continue
        # round trip (last byte even), then hostile rows (last byte odd)
        out.append(fdp(vals, bytes([n % 4, 1, n % 3, 0])))
        out.append(fdp(vals, bytes([2, 0, 4, 0, 1, 3, 1])))
    return out


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
    write(out, "fuzz_session", session_seeds(conf, src))
    write(out, "fuzz_dkim", dkim_seeds(conf, src))
    write(out, "fuzz_spf", spf_seeds(conf))
    write(out, "fuzz_report", report_seeds(conf, src))
    write(out, "fuzz_store", store_seeds(conf))


main()
