// NAME
//   dkim_result - the one mapping from what libopendkim (and our own
//   checks) found about a signature to an RFC 8601 result with a reason
// STANDARDS
//   RFC 6376 6.1 (verifier actions, TEMPFAIL / PERMFAIL), RFC 8301 3.1 and
//   3.2 (rsa-sha1, RSA key size), RFC 8463 (ed25519-sha256), RFC 8601
//   2.7.1 (pass, fail, policy, neutral, temperror, permerror)
// DESCRIPTION
//   classify_signature() looks at, in this order:
//     1. not checked (over max_signatures)          neutral
//     2. our strict tag-list parse refused it        permerror
//     3. our clock check (x= <= t=, x= expired, t= in the future)
//                                                    permerror
//     4. libopendkim has no handle for it: after a libopendkim failure
//        (DKIM_STAT_NORESOURCE, _INTERNAL) temperror, else permerror
//     5. the key's k= does not suit a= (RFC 6376 6.1.2)  permerror
//     6. DKIM_SIGERROR_* other than OK/UNKNOWN:
//          KEYFAIL     the DNS status we recorded for the key query,
//                      through dns_error_kind(): Temporary -> temperror,
//                      Permanent -> permerror; none recorded -> temperror
//          NOKEY       permerror (NXDOMAIN / NODATA: RFC 6376 6.1.2)
//          BADSIG      fail (or fail "body hash mismatch" when bh= failed)
//          KEYTOOSMALL policy, unless the body hash failed (fail)
//          every other one (syntax, unsupported value, key record,
//          revoked key, l= beyond the body, expired ...)   permerror
//     7. not processed because libopendkim failed on the message
//        (DKIM_STAT_NORESOURCE, _INTERNAL, _INVALID)  temperror
//     8. body hash mismatch                          fail
//     9. not verified                                fail
//    10. verified: rsa-sha1                          policy (RFC 8301 3.1)
//                  RSA key under min_rsa_bits        policy (RFC 8301 3.2)
//                  l= shorter than the canonicalized body and
//                  unsigned_trailer set              policy "unsigned content
//                                                    after l=" (RFC 6376 8.2)
//                  otherwise                         pass
//   Policy rather than permerror for RFC 8301: the signature is intact and
//   the key was found, so nothing is malformed (RFC 8601 2.7.1 permerror
//   is "unrecoverable error"); what refuses it is the verifier's policy,
//   which is what RFC 8601 2.7.1 "policy" names ("some aspect of the
//   signature ... was not acceptable to the ADMD"). RFC 8301 3.1/3.2 only
//   say such signatures MUST NOT be considered valid; neither result is a
//   pass, so DMARC treats both alike.
// DIAGNOSTICS
//   The reason is a short English phrase, never empty unless the result
//   is pass; it may quote the resolver's `why`.
#pragma once

#include <optional>
#include <string>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/evaluate.hpp"

namespace dmarc::dkim {

// KeyLookup - what the Resolver said about the key query of a signature.
struct KeyLookup {
  DnsStatus status = DnsStatus::Ok;
  std::string why;
  // Set when we refused the answer ourselves (bad name, bad record): the
  // status is then PermFail and this says why.
  std::string refused;
  // The key record's k= ("rsa" when absent), when one record was served.
  std::string key_type;
  // The key record as handed to libopendkim, when one record was served.
  std::string record;
};

struct SignatureFacts {
  bool ignored = false;                     // DKIM_SIGFLAG_IGNORE (max_signatures)
  unsigned max_signatures = 0;              // for the reason text
  std::optional<std::string> syntax_error;  // our parse_tag_list() refusal
  std::optional<std::string> clock_error;   // our x= / t= check
  int sig_error = -1;                       // DKIM_SIGERROR_*
  unsigned flags = 0;                       // DKIM_SIGFLAG_*
  int bh = -1;                              // DKIM_SIGBH_*
  int alg = -1;                             // DKIM_SIGN_*
  unsigned key_bits = 0;
  unsigned min_rsa_bits = 1024;
  std::optional<KeyLookup> key_lookup;      // present when a key query was made
  bool in_library = true;                   // libopendkim listed this signature
  std::optional<std::string> library_failure;  // a DKIM_STAT_* failure on the message
  bool unsigned_trailer = false;            // l= shorter than the canonicalized body, not allowed
};

struct Classification {
  AuthResult result = AuthResult::PermError;
  std::string reason;
};

// classify_signature - the result and reason for one signature.
Classification classify_signature(const SignatureFacts& facts);

// sigerror_reason - our wording for a DKIM_SIGERROR_* code.
std::string sigerror_reason(int sig_error);

}  // namespace dmarc::dkim
