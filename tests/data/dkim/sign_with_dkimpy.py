#!/usr/bin/python3
# sign_with_dkimpy.py - make the pre-signed test messages in this directory
#
#   apt-get install python3-dkim python3-nacl      (only to regenerate)
#   /usr/bin/python3 tests/data/dkim/sign_with_dkimpy.py
#
# Signs one unsigned message (below) with dkimpy 1.1.4 (Debian 12), an
# implementation independent of libopendkim, using the test keys in keys/
# whose public halves are published in tests/data/zones/dkim.example.zone.
# t= is pinned (no x=), so the signatures never expire.
import base64
import os
import time

import dkim

# dkimpy 1.1.4 takes t= from time.time(): pin it so the output is stable.
time.time = lambda: 1700000000

HERE = os.path.dirname(os.path.abspath(__file__))

MESSAGE = (
    b"From: Alice Example <alice@dkim.example>\r\n"
    b"To: bob@other.example\r\n"
    b"Subject: DKIM test message,\r\n"
    b"  folded over two lines\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <dkimpy-test-1@dkim.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"\r\n"
    b"this message was signed by dkimpy for the dmarc-milter tests.\r\n"
    b"  Trailing spaces and blank lines follow.   \r\n"
    b"\r\n"
    b"\r\n"
)

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]


def key(name):
    with open(os.path.join(HERE, "keys", name), "rb") as f:
        return f.read()


def ed25519_seed(pem):
    # PKCS#8 ed25519 private key: the 32-octet seed is the DER's last 32 octets.
    der = base64.b64decode(b"".join(l for l in pem.splitlines() if not l.startswith(b"-----")))
    return base64.b64encode(der[-32:])


def write(name, sig):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(sig + MESSAGE)


write("dkimpy-rsa2048.eml",
      dkim.sign(MESSAGE, b"rsa2048", b"dkim.example", key("rsa2048.pem"),
                canonicalize=(b"relaxed", b"simple"), include_headers=SIGNED_HEADERS,
                signature_algorithm=b"rsa-sha256"))
write("dkimpy-ed25519.eml",
      dkim.sign(MESSAGE, b"ed25519", b"dkim.example", ed25519_seed(key("ed25519.pem")),
                canonicalize=(b"relaxed", b"relaxed"), include_headers=SIGNED_HEADERS,
                signature_algorithm=b"ed25519-sha256"))
