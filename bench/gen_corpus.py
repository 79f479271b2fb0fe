#!/usr/bin/python3
"""gen_corpus.py - the benchmark's mail corpus and the DNS world that answers for it

USAGE
  bench/gen_corpus.py --out DIR --sign BENCH_SIGN [--sessions N] [--seed S]

DESCRIPTION
  Writes, under DIR:
    keys/        RSA-2048 and Ed25519 private keys, made here with
                 `openssl genpkey` (Debian package openssl)
    zones/example.zone
                 the whole world as one NSD zone for "example." (RFC 2606
                 names only): SPF, DKIM key and DMARC records of every
                 domain, MX and A records the SPF records use
    msgs/*.eml   the messages, DKIM-signed by bench-sign (libopendkim's
                 dkim_sign, Debian package libopendkim11) with the keys above
    manifest.tsv the SMTP sessions (corpus.hpp in bench/src describes it)
    summary.txt  what the mix came out as

  Clients use the RFC 5737 documentation networks only: senders' own
  servers 198.51.100.0/24, ESPs and forwarders 203.0.113.0/24, spoofers
  192.0.2.0/24. Nothing here is under .test: the libunbound in Debian's
  OpenDKIM answers every .test name NXDOMAIN by itself.

  The mix (per message, about): 88% of 2 to 3 KB, the rest up to 200 KB;
  78% DKIM-signed (RSA-2048, Ed25519, or both); aligned senders, ESPs
  (DKIM-aligned only), subdomain senders, forwarded mail (plain, SRS,
  mailing lists that break the signature), spoofed mail, null-sender
  bounces, and domains without a DMARC record. Each message carries the
  DMARC result it was built for (manifest column "expect").

  The same seed gives the same messages and zone (keys are new each run,
  so signatures differ). Needs only python3 and openssl besides bench-sign.
"""
import argparse
import base64
import math
import os
import random
import shutil
import subprocess
import sys

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there one all we their can has been if more when will would who so no order invoice account "
    "shipment meeting report update delivery quarterly review schedule please attached regards thanks team project "
    "customer service support newsletter offer discount week month price product launch feature release notes"
).split()

N_RSA_KEYS = 8
N_ED_KEYS = 8
N_BRANDS = 60
N_PLAIN = 20
N_SPAM = 10


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def make_keys(keydir):
    os.makedirs(keydir, exist_ok=True)
    keys = {}
    for i in range(N_RSA_KEYS):
        path = os.path.join(keydir, "rsa%d.pem" % i)
        if not os.path.exists(path):
            run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], stdout=subprocess.PIPE).stdout
        keys["rsa%d" % i] = (path, "rsa-sha256", "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())
    for i in range(N_ED_KEYS):
        path = os.path.join(keydir, "ed%d.pem" % i)
        if not os.path.exists(path):
            run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], stdout=subprocess.PIPE).stdout
        # RFC 8463 4.2: the record holds the raw 32-octet public key.
        keys["ed%d" % i] = (path, "ed25519-sha256", "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode())
    return keys


def txt(value):
    """A TXT RDATA in zone-file syntax, split into strings of at most 255 octets."""
    parts = [value[i:i + 250] for i in range(0, len(value), 250)] or [""]
    return " ".join('"%s"' % p.replace('"', '\\"') for p in parts)


class World:
    """Domains, their records, their servers, and their signing keys."""

    def __init__(self, keys):
        self.keys = keys
        self.records = []  # (owner relative to example., type, rdata)
        self.signing = {}  # domain -> list of (selector, key name)
        self.brands = []
        self.add("@", "SOA", "ns.example. hostmaster.example. 1 3600 900 604800 300")
        self.add("@", "NS", "ns.example.")
        self.add("ns", "A", "127.0.0.1")

        def dkim(domain, selector, key):
            self.add("%s._domainkey.%s." % (selector, domain), "TXT", txt(keys[key][2]))
            self.signing.setdefault(domain, []).append((selector, key))

        # Two ESPs and the forwarders.
        self.add("_spf.esp1", "TXT", txt("v=spf1 ip4:203.0.113.0/26 -all"))
        self.add("_spf.esp2", "TXT", txt("v=spf1 ip4:203.0.113.64/26 ~all"))
        for esp in ("esp1", "esp2"):
            self.add(esp, "TXT", txt("v=spf1 include:_spf.%s.example -all" % esp))
            self.add("_dmarc." + esp, "TXT", txt("v=DMARC1; p=none"))
            dkim(esp + ".example", "s1", "rsa%d" % (len(esp) % N_RSA_KEYS))
        self.add("fwd", "TXT", txt("v=spf1 ip4:203.0.113.144/28 -all"))
        self.add("mx.fwd", "A", "203.0.113.150")
        self.add("lists", "TXT", txt("v=spf1 ip4:203.0.113.160/28 -all"))
        self.add("_dmarc.lists", "TXT", txt("v=DMARC1; p=none"))
        dkim("lists.example", "list", "rsa7")

        for i in range(1, N_BRANDS + 1):
            d = "brand%03d" % i
            ip = "198.51.100.%d" % i
            self.add(d, "MX", "10 mx1.%s.example." % d)
            self.add("mx1." + d, "A", ip)
            self.add("mx1." + d, "TXT", txt("v=spf1 a -all"))  # the HELO name (null sender)
            self.add("out." + d, "A", ip)
            style = i % 3
            if style == 0:
                spf, helo = "v=spf1 ip4:%s -all" % ip, "mx1.%s.example" % d
            elif style == 1:
                spf, helo = "v=spf1 mx include:_spf.esp1.example ~all", "mx1.%s.example" % d
            else:
                spf, helo = "v=spf1 a:out.%s.example include:_spf.esp2.example -all" % d, "out.%s.example" % d
            self.add(d, "TXT", txt(spf))
            self.add(d, "TXT", txt("google-site-verification=%032x" % (i * 7919)))
            self.add("bounce." + d, "TXT", txt("v=spf1 ip4:%s -all" % ip))
            policy = ("reject", "quarantine", "none", "reject")[i % 4]
            rec = "v=DMARC1; p=%s; rua=mailto:dmarc@%s.example" % (policy, d)
            if i % 5 == 0:
                rec += "; sp=quarantine"
            self.add("_dmarc." + d, "TXT", txt(rec))
            if i % 6 == 0:
                self.add("_dmarc.news." + d, "TXT", txt("v=DMARC1; p=none"))
            kind = i % 10
            sign = []
            if kind != 9:
                sign.append(("r2048", "rsa%d" % (i % N_RSA_KEYS)))
            if kind in (7, 8, 9):
                sign.append(("ed", "ed%d" % (i % N_ED_KEYS)))
            for sel, key in sign:
                dkim(d + ".example", sel, key)
            self.brands.append({"name": d + ".example", "ip": ip, "helo": helo, "policy": policy, "esp": style})

        self.plain = []
        for i in range(1, N_PLAIN + 1):
            d = "plain%02d" % i
            ip = "198.51.100.%d" % (200 + i)
            self.add(d, "TXT", txt("v=spf1 ip4:%s -all" % ip))
            self.add("mail." + d, "A", ip)
            if i % 4 != 0:
                dkim(d + ".example", "default", "rsa%d" % (i % N_RSA_KEYS))
            self.plain.append({"name": d + ".example", "ip": ip, "helo": "mail.%s.example" % d})

        self.spam = []
        for i in range(1, N_SPAM + 1):
            d = "spam%02d" % i
            self.add(d, "TXT", txt("v=spf1 ip4:192.0.2.0/24 -all"))
            dkim(d + ".example", "k1", "rsa%d" % (i % N_RSA_KEYS))
            self.spam.append(d + ".example")

    def add(self, owner, rtype, rdata):
        self.records.append((owner, rtype, rdata))

    def zone(self):
        out = ["; the benchmark's DNS world (bench/gen_corpus.py); zone example.", "$ORIGIN example.", "$TTL 3600"]
        for owner, rtype, rdata in self.records:
            out.append("%-40s IN %-5s %s" % (owner, rtype, rdata))
        return "\n".join(out) + "\n"


class Writer:
    def __init__(self, rng, outdir):
        self.rng = rng
        self.outdir = outdir
        self.n = 0

    def words(self, n):
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def text_body(self, size):
        lines, total = [], 0
        while total < size:
            line = self.words(self.rng.randint(6, 12)).capitalize() + "."
            if total + len(line) + 2 > size:
                line = line[:max(1, size - total - 2)]
            lines.append(line)
            total += len(line) + 2
            if self.rng.random() < 0.15:
                lines.append("")
                total += 2
        return "\r\n".join(lines) + "\r\n"

    def date(self):
        day = self.rng.randint(1, 28)
        return "Tue, %02d Jul 2026 %02d:%02d:%02d +0000" % (day, self.rng.randint(0, 23), self.rng.randint(0, 59),
                                                            self.rng.randint(0, 59))

    def message(self, frm, frm_domain, to, subject, size, received, extra=(), overhead=0):
        """A message of about SIZE octets once OVERHEAD octets (signatures, a forwarder's
        Received field) are added to it."""
        size -= overhead
        self.n += 1
        mid = "<%08x.%d@%s>" % (self.rng.getrandbits(32), self.n, frm_domain)
        head = list(received) + [
            "From: %s" % frm,
            "To: %s" % to,
            "Subject: %s" % subject,
            "Date: %s" % self.date(),
            "Message-ID: %s" % mid,
            "MIME-Version: 1.0",
        ] + list(extra)
        base = sum(len(h) + 2 for h in head) + 2
        want = max(200, size - base)
        if size <= 4000:
            head += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit"]
            body = self.text_body(want)
        else:
            # A short text part and a base64 attachment, as large mail is.
            boundary = "=_bench_%08x" % self.rng.getrandbits(32)
            head += ['Content-Type: multipart/mixed; boundary="%s"' % boundary]
            text = self.text_body(600)
            blob_len = max(0, (want - len(text) - 400) * 3 // 4)
            blob = base64.b64encode(self.rng.randbytes(blob_len)).decode()
            b64 = "\r\n".join(blob[i:i + 76] for i in range(0, len(blob), 76))
            body = ("This is a multi-part message in MIME format.\r\n\r\n--%s\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--%s\r\n"
                    "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
                    "Content-Transfer-Encoding: base64\r\n"
                    "Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n%s\r\n--%s--\r\n"
                    % (boundary, text, boundary, b64, boundary))
        return "\r\n".join(head) + "\r\n\r\n" + body


def received(rng, frm_host, ip, by):
    return ("Received: from %s (%s [%s])\r\n\tby %s (Postfix) with ESMTPS id %010X\r\n\tfor <user@rcpt.example>; "
            "Tue, 14 Jul 2026 10:%02d:%02d +0000" % (frm_host, frm_host, ip, by, rng.getrandbits(40),
                                                   rng.randint(0, 59), rng.randint(0, 59)))


def pick_size(rng):
    """88% 2-3 KB; the rest log-uniform from 3 KB to 200 KB."""
    if rng.random() < 0.88:
        return rng.randint(2000, 3000)
    return int(math.exp(rng.uniform(math.log(3000), math.log(200000))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--sign", required=True, help="path to the bench-sign program")
    ap.add_argument("--sessions", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    out = os.path.abspath(args.out)
    for sub in ("msgs", "zones", "unsigned"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))
    keys = make_keys(os.path.join(out, "keys"))
    world = World(keys)
    with open(os.path.join(out, "zones", "example.zone"), "w") as f:
        f.write(world.zone())

    w = Writer(rng, out)
    # Session kinds and their weights (sessions, not messages).
    kinds = [("direct", 40), ("esp", 12), ("subdomain", 8), ("forward", 5), ("forward_srs", 2), ("list", 2),
             ("spoof", 14), ("bounce", 6), ("nodmarc", 11)]
    names = [k for k, _ in kinds]
    weights = [wt for _, wt in kinds]

    manifest = ["# session\tclient_ip\tclient_name\thelo\tmail_from\trcpts\tfile\texpect"]
    sign1, sign2, post = [], [], {}  # signing passes, and edits between them
    counts = {}

    def ovh(spec, kind):
        """Octets that signing, and forwarding, will add to a message."""
        n = sum(600 if ":rsa-sha256:" in x else 340 for x in spec)
        if kind in ("forward", "forward_srs"):
            n += 150
        elif kind == "list":
            n += 150 + 90 + 600 + 75
        return n

    def sigs_for(domain, pick=None):
        spec = []
        for sel, key in world.signing[domain]:
            path, alg, _ = keys[key]
            canon = "relaxed/relaxed" if rng.random() < 0.8 else "relaxed/simple"
            spec.append("%s:%s:%s:%s:%s" % (domain, sel, path, alg, canon))
        return spec

    for s in range(args.sessions):
        kind = rng.choices(names, weights)[0]
        nmsg = 1 if rng.random() < 0.7 or kind in ("bounce", "forward", "forward_srs", "list") else rng.randint(2, 5)
        sid = "s%05d" % s
        b = rng.choice(world.brands)
        if kind in ("direct", "subdomain", "bounce"):
            ip, name, helo = b["ip"], b["helo"], b["helo"]
        elif kind == "esp":
            if b["esp"] == 2:
                ip = "203.0.113.%d" % rng.randint(65, 126)
                helo = "o%d.esp2.example" % rng.randint(1, 9)
            else:
                ip = "203.0.113.%d" % rng.randint(1, 62)
                helo = "o%d.esp1.example" % rng.randint(1, 9)
            name = helo
        elif kind in ("forward", "forward_srs"):
            ip, name, helo = "203.0.113.%d" % rng.randint(145, 158), "mx.fwd.example", "mx.fwd.example"
        elif kind == "list":
            ip, name, helo = "203.0.113.%d" % rng.randint(161, 174), "lists.example", "lists.example"
        elif kind == "spoof":
            ip, name, helo = "192.0.2.%d" % rng.randint(1, 254), "unknown", "host%d.dialup.example" % rng.randint(1, 99)
        else:  # nodmarc
            p = rng.choice(world.plain)
            ip, name, helo = p["ip"], p["helo"], p["helo"]
        for k in range(nmsg):
            fname = "%s-%d.eml" % (sid, k)
            rcpts = ["<user%d@rcpt.example>" % rng.randint(1, 500) for _ in range(1 if rng.random() < 0.85 else 2)]
            size = pick_size(rng)
            user = rng.choice(["news", "info", "billing", "alice", "bob", "orders", "no-reply"])
            rcv = [received(rng, "[10.1.%d.%d]" % (rng.randint(0, 255), rng.randint(1, 254)), "10.1.0.1", helo)]
            spec, expect = [], "fail"
            dom = b["name"]
            if kind == "direct":
                mail_from = "<%s@%s>" % (user, dom)
                frm = "%s <%s@%s>" % (user.capitalize(), user, dom)
                if rng.random() < 0.9:
                    spec = sigs_for(dom)
                expect = "pass"
                text = w.message(frm, dom, rcpts[0][1:-1], w.words(5), size, rcv, overhead=ovh(spec, kind))
            elif kind == "esp":
                esp = "esp2.example" if b["esp"] == 2 else "esp1.example"
                mail_from = "<bounces+%d-%s=%s@%s>" % (rng.randint(1000, 9999), user, dom, esp)
                frm = "%s <%s@%s>" % (dom.split(".")[0].capitalize(), user, dom)
                spec = sigs_for(dom) + (sigs_for(esp) if rng.random() < 0.5 else [])
                expect = "pass"
                text = w.message(frm, dom, rcpts[0][1:-1], w.words(6), size, rcv,
                                 ["List-Unsubscribe: <https://%s/u/%d>" % (esp, rng.getrandbits(32))], overhead=ovh(spec, kind))
            elif kind == "subdomain":
                sub = "news." + dom
                mail_from = "<bounce-%d@bounce.%s>" % (rng.randint(1, 99999), dom)
                frm = "News <news@%s>" % sub
                if rng.random() < 0.9:
                    spec = sigs_for(dom)
                expect = "pass"
                text = w.message(frm, sub, rcpts[0][1:-1], w.words(6), size, rcv, overhead=ovh(spec, kind))
            elif kind in ("forward", "forward_srs", "list"):
                orig_from = "%s@%s" % (user, dom)
                if kind == "forward_srs":
                    mail_from = "<SRS0=%04x=TT=%s=%s@fwd.example>" % (rng.getrandbits(16), dom, user)
                elif kind == "list":
                    mail_from = "<list-bounces+%s=rcpt.example@lists.example>" % user
                else:
                    mail_from = "<%s>" % orig_from
                signed = kind == "list" or rng.random() < 0.9
                if signed:
                    spec = sigs_for(dom)
                expect = "pass" if signed and kind != "list" else "fail"
                text = w.message("%s <%s>" % (user.capitalize(), orig_from), dom, "someone@fwd.example", w.words(5),
                                 size, [received(rng, b["helo"], b["ip"], "mx.fwd.example")], overhead=ovh(spec, kind))
                post[fname] = kind
            elif kind == "spoof":
                variant = rng.random()
                if variant < 0.45:
                    mail_from = "<%s@%s>" % (user, dom)
                    frm = "%s <%s@%s>" % (dom.split(".")[0].capitalize(), user, dom)
                    text = w.message(frm, dom, rcpts[0][1:-1], "Your account: action required", size, rcv, overhead=ovh(spec, kind))
                elif variant < 0.8:
                    spam = rng.choice(world.spam)
                    mail_from = "<%s@%s>" % (user, spam)
                    frm = "%s Security <security@%s>" % (dom.split(".")[0].capitalize(), dom)
                    spec = sigs_for(spam)
                    text = w.message(frm, dom, rcpts[0][1:-1], "Verify your payment details", size, rcv, overhead=ovh(spec, kind))
                else:
                    spam = rng.choice(world.spam)
                    mail_from = "<%s@%s>" % (user, spam)
                    frm = "Security <alert@security.%s>" % dom
                    text = w.message(frm, "security." + dom, rcpts[0][1:-1], "Unusual sign-in", size, rcv, overhead=ovh(spec, kind))
                expect = "fail"
            elif kind == "bounce":
                mail_from = "<>"
                mx = "mx1." + dom
                frm = "Mail Delivery System <MAILER-DAEMON@%s>" % mx
                if rng.random() < 0.5:
                    spec = sigs_for(dom)
                # SPF of the HELO name (RFC 7208 2.4), aligned with From; or DKIM.
                expect = "pass" if helo == mx or spec else "fail"
                text = w.message(frm, mx, rcpts[0][1:-1], "Undelivered Mail Returned to Sender", size, rcv,
                                 ["Auto-Submitted: auto-replied"], overhead=ovh(spec, kind))
            else:  # nodmarc
                dom = [p for p in world.plain if p["ip"] == ip][0]["name"]
                mail_from = "<%s@%s>" % (user, dom)
                frm = "%s <%s@%s>" % (user.capitalize(), user, dom)
                if dom in world.signing and rng.random() < 0.9:
                    spec = sigs_for(dom)
                expect = "none"
                text = w.message(frm, dom, rcpts[0][1:-1], w.words(4), size, rcv, overhead=ovh(spec, kind))
            with open(os.path.join(out, "unsigned", fname), "w", newline="") as f:
                f.write(text)
            target = os.path.join(out, "msgs", fname)
            if spec:
                sign1.append("%s\t%s\t%s" % (os.path.join(out, "unsigned", fname), target, " ".join(spec)))
            else:
                shutil.copyfile(os.path.join(out, "unsigned", fname), target)
            manifest.append("\t".join([sid, ip, name, helo, mail_from, ",".join(rcpts), "msgs/" + fname, expect]))
            key = kind + ("" if kind != "spoof" else "")
            c = counts.setdefault(key, [0, 0])
            c[0] += 1
            c[1] += 1 if spec else 0

    def sign(lines):
        if lines:
            run([args.sign], input=("\n".join(lines) + "\n").encode())

    sign(sign1)
    # What forwarders do after the author signed: a Received field on top;
    # a mailing list also tags the subject, adds a footer and signs itself.
    for fname, kind in post.items():
        path = os.path.join(out, "msgs", fname)
        with open(path, newline="") as f:
            text = f.read()
        hop = received(rng, "mx.origin.example", "198.51.100.250", "mx.fwd.example" if kind != "list" else "lists.example")
        head, body = text.split("\r\n\r\n", 1)
        if kind == "list":
            lines = head.split("\r\n")
            lines = [("Subject: [announce] " + l[9:]) if l.startswith("Subject: ") else l for l in lines]
            head = "\r\n".join(lines) + "\r\nList-Id: <announce.lists.example>\r\nPrecedence: list"
            body += "\r\n--\r\nannounce mailing list\r\nhttps://lists.example/announce\r\n"
        with open(path, "w", newline="") as f:
            f.write(hop + "\r\n" + head + "\r\n\r\n" + body)
        if kind == "list":
            tmp = path + ".tmp"
            os.rename(path, tmp)
            sign2.append("%s\t%s\t%s" % (tmp, path, " ".join(sigs_for("lists.example"))))
    sign(sign2)
    for fname, kind in post.items():
        if kind == "list":
            os.unlink(os.path.join(out, "msgs", fname + ".tmp"))
    shutil.rmtree(os.path.join(out, "unsigned"))

    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(manifest) + "\n")

    # Summary of what came out.
    sizes, signed, rsa, ed, expects = [], 0, 0, 0, {}
    for line in manifest[1:]:
        cols = line.split("\t")
        expects[cols[7]] = expects.get(cols[7], 0) + 1
        with open(os.path.join(out, cols[6]), "rb") as f:
            data = f.read()
        sizes.append(len(data))
        head = data.split(b"\r\n\r\n", 1)[0]
        if b"DKIM-Signature:" in head:
            signed += 1
        if b"a=rsa-sha256" in head:
            rsa += 1
        if b"a=ed25519-sha256" in head:
            ed += 1
    n = len(sizes)
    small = sum(1 for s in sizes if 2000 <= s <= 3072)
    lines = [
        "messages %d in %d sessions (seed %d)" % (n, args.sessions, args.seed),
        "size: %.1f%% of 2-3 KB, median %d octets, mean %d, max %d" % (
            100.0 * small / n, sorted(sizes)[n // 2], sum(sizes) // n, max(sizes)),
        "DKIM-signed %.1f%% (with an RSA-2048 signature %.1f%%, with an Ed25519 one %.1f%%)" % (
            100.0 * signed / n, 100.0 * rsa / n, 100.0 * ed / n),
        "expected DMARC: " + ", ".join("%s %d" % kv for kv in sorted(expects.items())),
        "kinds (messages, signed): " + ", ".join("%s %d/%d" % (k, v[0], v[1]) for k, v in sorted(counts.items())),
        "DNS records: %d in zones/example.zone" % len(world.records),
    ]
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
