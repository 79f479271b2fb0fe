#!/usr/bin/python3
"""callgrind_split.py - dmarc-milter's instructions per message, split by what they are for

USAGE
  bench/callgrind_split.py CALLGRIND_OUT MESSAGES [--top N]

DESCRIPTION
  Reads a callgrind output file (valgrind --tool=callgrind, Debian package
  valgrind) of dmarc-milter and sorts every instruction into one of:
    spf       libspf2 and our SPF adapter
    dkim      libopendkim and our DKIM adapter (OpenSSL work they call:
              key decoding, RSA/Ed25519, SHA-256)
    dns       our resolver and cache, ldns, the DNS bridges of SPF and DKIM
    dmarc     the DMARC core: policy discovery, alignment, From parsing,
              Authentication-Results, the end-of-message decision
    logging   spdlog and fmt
    protocol  libmilter and our callbacks (reading commands, replies)
    store     recording for aggregate reports: the records built at the end
              of a message, the recorder's queue and writer thread, SQLite
    metrics   the counters, the latency histogram and its clock reads, the
              counting DNS layer (the /metrics server when it is scraped)
    other     what no category reaches (start-up, the signal thread)
  A function outside these (libc, libcrypto, libstdc++) counts for the
  categories of its callers, in proportion to what each call path cost
  (callgrind's inclusive cost per call edge), up to the nearest function
  that has a category. Prints instructions per message per category and
  the top exclusive functions.
"""
import re
import sys
from collections import defaultdict


def parse(path):
    names = {"ob": {}, "fn": {}}
    excl = defaultdict(int)
    edges = defaultdict(int)  # (caller, callee) -> inclusive cost
    obj_of = {}
    ob = fn = cob = cfn = None
    pending_call = False
    ref = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def resolve(kind, text):
        m = ref.match(text)
        if not m:
            return text
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), text)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[-1]) if parts[-1].isdigit() else 0
                if pending_call:
                    edges[((ob, fn), (cob if cob else ob, cfn))] += cost
                    pending_call = False
                    cob = None  # cob= holds for one call only
                else:
                    excl[(ob, fn)] += cost
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                ob = resolve("ob", val)
                cob = None
            elif key == "fn":
                fn = resolve("fn", val)
                cob = None
            elif key == "cob":
                cob = resolve("ob", val)
            elif key == "cfn":
                cfn = resolve("fn", val)
            elif key == "calls":
                pending_call = True
    return excl, edges


def category(node):
    ob, fn = node
    ob = ob or ""
    fn = re.sub(r"'\d+$", "", fn or "")
    if "libspdlog" in ob or "libfmt" in ob or "spdlog::" in fn or fn.startswith("fmt::"):
        return "logging"
    if ("libldns" in ob or "CachedResolver" in fn or "LdnsResolver" in fn or "DnsBridge" in fn
            or "build_txt_reply" in fn or "dkim_dns_bridge" in fn or fn.startswith("dmarc::dkim::(anonymous namespace)::start(")
            or "dmarc::dkim::(anonymous namespace)::waitreply" in fn or "dmarc::dkim::(anonymous namespace)::cancel" in fn):
        return "dns"
    if "libspf2" in ob or "SpfVerifier" in fn or fn.startswith("dmarc::spf2::"):
        return "spf"
    if ("libopendkim" in ob or fn.startswith("dmarc::dkim::") or "MessageImpl" in fn or "DkimVerifier" in fn
            or "DkimMessage" in fn or "DkimSignatureResult" in fn):
        return "dkim"
    if ("libsqlite3" in ob or "SqliteStore" in fn or "Recorder" in fn or fn.startswith("dmarc::aggregate_records")
            or fn.startswith("dmarc::record_key") or fn.startswith("dmarc::encode_fields")
            or fn.startswith("dmarc::milter::(anonymous namespace)::record(")):
        return "store"
    if ("Metrics::" in fn or "Histogram::" in fn or "CountingResolver" in fn or "::Busy" in fn
            or "libmicrohttpd" in ob or "render_metrics" in fn):
        return "metrics"
    if "libmilter" in ob:
        return "protocol"
    if fn.startswith("dmarc::milter::Session::eom") or fn.startswith("dmarc::milter::Outcome"):
        return "dmarc"
    if fn.startswith("dmarc::milter::"):
        return "protocol"
    if fn.startswith("dmarc::"):
        return "dmarc"
    return None


def split(excl, edges):
    callers = defaultdict(list)
    for (a, b), cost in edges.items():
        if a != b:
            callers[b].append((a, cost))
    memo = {}
    visiting = set()

    def dist(node):
        if node in memo:
            return memo[node]
        cat = category(node)
        if cat:
            memo[node] = {cat: 1.0}
            return memo[node]
        cs = callers.get(node, [])
        total = sum(c for _, c in cs)
        if not cs or total == 0 or node in visiting:
            return {"other": 1.0}
        visiting.add(node)
        out = defaultdict(float)
        for caller, cost in cs:
            for k, v in dist(caller).items():
                out[k] += v * cost / total
        visiting.discard(node)
        memo[node] = dict(out)
        return memo[node]

    sys.setrecursionlimit(100000)
    per = defaultdict(float)
    lost = defaultdict(float)
    for node, cost in excl.items():
        for k, v in dist(node).items():
            per[k] += cost * v
            if k == "other":
                lost[node] += cost * v
    return per, lost


def main():
    args = [a for a in sys.argv[1:] if a != "--debug"]
    top = 15
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    path, msgs = args[0], int(args[1])
    excl, edges = parse(path)
    per, lost = split(excl, edges)
    total = sum(per.values())
    print("instructions per message by category (%d messages, %.2fM instructions each)" % (msgs, total / msgs / 1e6))
    for k in ("spf", "dkim", "dns", "dmarc", "protocol", "logging", "store", "metrics", "other"):
        v = per.get(k, 0.0)
        print("  %-9s %10.0f  %5.1f%%" % (k, v / msgs, 100.0 * v / total if total else 0))
    if "--debug" in sys.argv:
        for node, cost in sorted(lost.items(), key=lambda kv: -kv[1])[:20]:
            print("  other: %10.0f %s [%s]" % (cost / msgs, node[1], node[0]))
    print("top functions by own instructions (per message):")
    for node, cost in sorted(excl.items(), key=lambda kv: -kv[1])[:top]:
        ob, fn = node
        print("  %10.0f  %5.1f%%  %s [%s]" % (cost / msgs, 100.0 * cost / total, (fn or "?")[:90], (ob or "?").rsplit("/", 1)[-1]))


if __name__ == "__main__":
    main()
