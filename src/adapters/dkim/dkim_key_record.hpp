// NAME
//   dkim_key_record - check a DKIM key record before libopendkim sees it
// STANDARDS
//   RFC 6376 3.6.1 (key record tags), 3.2 (tag-list), 3.6.2.2 (TXT),
//   6.1.2 step 5 (a malformed key record is PERMFAIL); RFC 3447 A.1.1
//   (RSAPublicKey), RFC 5280 4.1.2.7 (SubjectPublicKeyInfo); RFC 6376
//   erratum 3017 (p= of k=rsa is a SubjectPublicKeyInfo in practice)
// DESCRIPTION
//   prepare_key_record() returns the record to hand to libopendkim, or why
//   it must not be used:
//     - a NUL byte, or more than kMaxKeyRecord octets: refused (libopendkim
//       treats the record as a C string in a 1024-octet buffer and would
//       silently cut it)
//     - not a valid tag-list (including a repeated tag), v= present but not
//       the first tag, no p= tag, p= not base64: refused
//     - k=rsa (or no k=) whose p= is a bare PKCS#1 RSAPublicKey, the form
//       RFC 6376 3.6.1 literally names: re-encoded as the equivalent
//       SubjectPublicKeyInfo, the only form libopendkim decodes. The key
//       is the same; only its ASN.1 wrapping changes.
//   Anything else is passed through for libopendkim to judge (unknown
//   v=, k=, h=, s=, empty p= = revoked, p= not a key ...).
// SECURITY
//   The record is untrusted DNS data; lengths are checked before every
//   read, and the DER walk never reads past the decoded buffer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"

namespace dmarc::dkim {

// Longest key record handed to libopendkim (it copies the record into a
// 1024-octet buffer). An RSA-4096 key record, the largest RFC 8301 3.2
// requires verifiers to handle, is about 750 octets.
inline constexpr std::size_t kMaxKeyRecord = 1023;

Expected<std::string, std::string> prepare_key_record(std::string_view record);

// base64_decode - RFC 4648 4 base64 (padding optional); nullopt on a
// character outside the alphabet, misplaced padding or an impossible
// length. base64_encode - with padding.
std::optional<std::vector<unsigned char>> base64_decode(std::string_view text);
std::string base64_encode(const std::vector<unsigned char>& data);

// spki_from_pkcs1 - DER as a SubjectPublicKeyInfo when DER is exactly one
// RSAPublicKey SEQUENCE { INTEGER, INTEGER }; nullopt otherwise.
std::optional<std::vector<unsigned char>> spki_from_pkcs1(const std::vector<unsigned char>& der);

}  // namespace dmarc::dkim
