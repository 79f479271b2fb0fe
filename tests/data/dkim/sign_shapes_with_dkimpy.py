#!/usr/bin/python3
# sign_shapes_with_dkimpy.py - make the "shapes" messages in shapes/
#
#   apt-get install python3-dkim              (only to regenerate)
#   /usr/bin/python3 tests/data/dkim/sign_shapes_with_dkimpy.py
#
# Legitimate DKIM signatures of unusual shape (issue 12 item 9) that
# dkimpy's signer cannot write itself: FWS around "=" and ";" in the
# tag-list (RFC 6376 3.2 allows it), folded h= lists, a folded b=, and
# bodies with NUL octets. The DKIM-Signature value is written here as a
# template; the hashes are computed with dkimpy's own canonicalization
# (dkim.canonicalization) and hash_headers(), the signature with its RSA
# code, and every message is then checked with dkim.verify() before it is
# written, so each file is a signature an independent verifier accepts.
# Key: keys/rsa2048.pem (s=rsa2048, d=dkim.example), t= pinned, no x=.
import base64
import hashlib
import os
import re

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import RSASSA_PKCS1_v1_5_sign, parse_pem_private_key, parse_public_key
from dkim.util import parse_tag_value

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "shapes")

HEADERS = (
    b"From: Alice Example <alice@dkim.example>\r\n"
    b"To: bob@other.example\r\n"
    b"Subject: a DKIM signature of unusual shape\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <shape@dkim.example>\r\n"
)
TEXT_BODY = b"Hello Bob,\r\n\r\nthis body is plain text.\r\n"
NUL_BODY = b"Hello Bob,\r\n\r\na NUL \x00 in a line,\r\n\x00\x00 two at the start,\r\nand one at the end\x00\r\n"
NUL_ONLY_BODY = b"\x00\r\n"


def key(name):
    with open(os.path.join(HERE, "keys", name), "rb") as f:
        return f.read()


PRIVATE = parse_pem_private_key(key("rsa2048.pem"))
RECORD = key("rsa2048.txt").strip()


def dns(name, timeout=5):
    assert name == b"rsa2048._domainkey.dkim.example.", name
    return RECORD


def sign(template, body, canon):
    """TEMPLATE: the DKIM-Signature value with {bh} and ending in the b= tag
    (its value empty). Returns the whole message."""
    policy = CanonicalizationPolicy.from_c_value(canon)
    message = HEADERS + b"\r\n" + body
    headers, _ = dkim.rfc822_parse(message)
    bh = base64.b64encode(hashlib.sha256(policy.canonicalize_body(body)).digest())
    value = template.replace(b"{bh}", bh)
    tags = parse_tag_value(re.sub(rb"\s", b"", value))  # h= as a verifier reads it
    include = [h for h in tags[b"h"].split(b":")]
    h = hashlib.sha256()
    dkim.hash_headers(h, policy, policy.canonicalize_headers(headers), include, (b"DKIM-Signature", value), tags)
    b = base64.b64encode(bytes(RSASSA_PKCS1_v1_5_sign(h, PRIVATE)))
    # A folded b= (RFC 6376 3.5 allows FWS anywhere in it): after 40 characters.
    if template.endswith(b"b =\r\n\t"):
        b = b[:40] + b"\r\n\t" + b[40:]
    signed = b"DKIM-Signature:" + value + b + b"\r\n" + message
    assert dkim.verify(signed, dnsfunc=dns), template
    return signed


SHAPES = {
    # Spaces around every "=" and ";" (RFC 6376 3.2 tag-spec: [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]).
    "fws-spaces-relaxed.eml": (
        b" v = 1 ; a = rsa-sha256 ; c = relaxed/relaxed ; d = dkim.example ; s = rsa2048 ;"
        b" t = 1700000000 ; h = from : to : subject : date : message-id ; bh = {bh} ; b = ",
        TEXT_BODY, b"relaxed/relaxed"),
    # The same under simple header canonicalization: the field is hashed exactly as written.
    "fws-spaces-simple.eml": (
        b" v = 1 ; a = rsa-sha256 ; c = simple/simple ; d = dkim.example ; s = rsa2048 ;"
        b" t = 1700000000 ; h = from : to : subject : date : message-id ; bh = {bh} ; b = ",
        TEXT_BODY, b"simple/simple"),
    # Tabs, and folding (CRLF WSP) before and after "=" and ";", inside h=, and a folded b=.
    "fws-folded.eml": (
        b"\tv\t=\t1\t;\ta =\r\n\trsa-sha256 ;\r\n c=relaxed/simple\r\n ; d=\r\n dkim.example; s =rsa2048;"
        b" t= 1700000000;\r\n\th = from :\r\n\tto: subject :date: message-id;\r\n\tbh =\r\n\t{bh};\r\n\tb =\r\n\t",
        TEXT_BODY, b"relaxed/simple"),
    # Whitespace after the last tag's value and before the final ";" (RFC 6376 3.2 allows a trailing ";").
    "fws-trailing.eml": (
        b" v=1 ;a=rsa-sha256 ;c=relaxed/relaxed ;d=dkim.example ;s=rsa2048 ;t=1700000000 ;"
        b"h=from:to:subject:date:message-id ;bh={bh} ;b=",
        TEXT_BODY, b"relaxed/relaxed"),
    # An unknown tag whose name ends in "b" (RFC 6376 3.2: unknown tags are ignored, but hashed).
    "tag-ending-in-b.eml": (
        b" v=1; a=rsa-sha256; c=relaxed/relaxed; d=dkim.example; s=rsa2048; t=1700000000; zb=kept;"
        b" h=from:to:subject:date:message-id; bh={bh}; b=",
        TEXT_BODY, b"relaxed/relaxed"),
    # Bodies with NUL octets: RFC 6376 hashes the body as octets; nothing treats NUL specially.
    "nul-body-relaxed.eml": (
        b" v=1; a=rsa-sha256; c=relaxed/relaxed; d=dkim.example; s=rsa2048; t=1700000000;"
        b" h=from:to:subject:date:message-id; bh={bh}; b=",
        NUL_BODY, b"relaxed/relaxed"),
    "nul-body-simple.eml": (
        b" v=1; a=rsa-sha256; c=simple/simple; d=dkim.example; s=rsa2048; t=1700000000;"
        b" h=from:to:subject:date:message-id; bh={bh}; b=",
        NUL_BODY, b"simple/simple"),
    "nul-only-body.eml": (
        b" v=1; a=rsa-sha256; c=relaxed/relaxed; d=dkim.example; s=rsa2048; t=1700000000;"
        b" h=from:to:subject:date:message-id; bh={bh}; b=",
        NUL_ONLY_BODY, b"relaxed/relaxed"),
}

os.makedirs(OUT, exist_ok=True)
for name, (template, body, canon) in SHAPES.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(sign(template, body, canon))
    print("wrote", name)
