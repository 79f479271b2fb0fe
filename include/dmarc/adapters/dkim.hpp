// NAME
//   dkim - DKIM verification (RFC 6376) on libopendkim, keys from our Resolver
// STANDARDS
//   RFC 6376 (DKIM), RFC 8301 (no rsa-sha1, RSA keys of 1024 bits or more),
//   RFC 8463 (ed25519-sha256), RFC 8601 2.7.1 (header.d, header.s, header.b).
// SYNOPSIS
//   auto lib = dmarc::DkimVerifier::create(resolver, dmarc::DkimOptions{});
//   auto msg = (*lib)->begin("QUEUEID");
//   msg->header("From", " alice@example.net");   // as the MTA gives them
//   msg->end_of_headers();
//   msg->body(chunk);                            // CRLF text, any chunking
//   std::vector<dmarc::DkimSignatureResult> sigs = msg->finish();
// DESCRIPTION
//   Key queries (selector._domainkey.domain TXT) go through the
//   dkim_dns_set_query_* callbacks onto the Resolver given at creation.
//   Headers and body chunks are fed to libopendkim as they arrive; the
//   message is never copied whole. Header values folded with bare LF are
//   given to libopendkim with CRLF, as opendkim does; body chunks must
//   already be CRLF text (the milter protocol's form).
//   Every DKIM-Signature is reported, in header order, with its own result:
//     pass       the signature verified
//     fail       the signature or body hash did not verify
//     neutral    not evaluated: beyond max_signatures (RFC 8601 2.7.1)
//     policy     it verified but local policy refuses it: rsa-sha1 or an
//                RSA key under min_rsa_bits (RFC 8301 3.1, 3.2). Policy and
//                not permerror: nothing in the signature or key is
//                malformed; RFC 8601 2.7.1 "policy" is exactly "signed,
//                but not acceptable to the ADMD". Neither is a pass.
//     permerror  syntax error in the signature or key record (a repeated
//                tag makes a tag-list invalid, RFC 6376 3.2), unsupported
//                v=/a=/c=/q=, i= outside d=, From not signed, expired x=,
//                t= in the future, l= beyond the body, no key (NXDOMAIN,
//                NODATA), revoked key, key k= unfit for a=, key lookup
//                refused (d=/s= not a domain name, record with a NUL or
//                over 1023 octets) or PermFail
//   A k=rsa key given as a bare PKCS#1 RSAPublicKey (what RFC 6376 3.6.1
//   literally says) is accepted as well as the usual SubjectPublicKeyInfo.
//     temperror  the key lookup failed temporarily (timeout, SERVFAIL:
//                a TempFail through dns_error_kind())
//   `reason` says why for every result but pass. Signatures with l= are
//   flagged (body_length); when unsigned content follows the signed length
//   they are policy ("unsigned content after l=", RFC 6376 8.2) unless
//   allow_unsigned_trailer. A DKIM-Signature with FWS before "=" in its
//   tags, which libopendkim hashes wrongly, has its header signature
//   checked by us (src/adapters/dkim/dkim_header_check.hpp). d= as
//   reported is lower case; libopendkim's d=/s= must equal ours (else
//   permerror). Keys with t=y are flagged
//   (test_key): RFC 6376 3.6.1 asks verifiers not to treat such mail
//   differently from unsigned mail, which is the caller's decision.
//   The clock for t= and x= is the system clock, or fixed_time; both are
//   allowed clock_drift. libopendkim 2.11 reads the system clock for x=
//   and t= itself, so fixed_time must not lie after the real clock.
// THREADING
//   One DkimVerifier (one DKIM_LIB, set up once in create() and read-only
//   afterwards) serves all threads; each DkimMessage (one DKIM handle) is
//   used by one thread at a time, and must not outlive its DkimVerifier.
//   The Resolver is called from the threads that call end_of_headers()
//   and finish(), so it must be thread-safe when they are several
//   (LdnsResolver and CachedResolver are).
// DIAGNOSTICS
//   create() returns a message when libopendkim cannot be set up (or lacks
//   ed25519-sha256) or an option is out of range. No function throws
//   except std::bad_alloc; a libopendkim failure on one message shows in
//   its results (temperror or permerror with the reason).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/expected.hpp"

namespace dmarc {

struct DkimOptions {
  // RFC 8301 3.2: RSA keys below this never pass. Not below 1024.
  unsigned min_rsa_bits = 1024;
  // Signatures checked per message, counting only those libopendkim could
  // set up (a malformed one costs no DNS query and no RSA operation); the
  // rest are reported as neutral, "not checked". At least 1.
  unsigned max_signatures = 10;
  // Pin the verifier's clock (t=, x=); for tests with fixed vectors. Must
  // not lie in the future of the system clock (see DESCRIPTION).
  std::optional<std::time_t> fixed_time;
  // Allowed clock skew for t= (future) and x= (expiry), RFC 6376 3.5.
  std::chrono::seconds clock_drift{300};
  // RFC 6376 8.2: a signature with l= shorter than the canonicalized body
  // leaves content unsigned (a footer, or an attacker's text). false: such
  // a signature is "policy" (unsigned content after l=), a pass only when
  // nothing follows the signed length. true: it passes (flagged
  // body_length), as libopendkim alone would.
  bool allow_unsigned_trailer = false;
};

// Results reported per message: RFC 9990 (aggregate reports) keeps at most
// 100 DKIM results per record; the rest are counted (DkimMessage::omitted).
inline constexpr std::size_t kMaxDkimResults = 100;

struct DkimSignatureResult {
  AuthResult result = AuthResult::None;
  std::string domain;     // d=
  std::string selector;   // s=
  std::string identity;   // i=, when present
  std::string algorithm;  // a=: "rsa-sha256", "ed25519-sha256", "rsa-sha1", ...
  unsigned key_bits = 0;  // size of the public key, 0 when unknown
  std::string b_prefix;   // the first characters of b= (RFC 8601 header.b: 8 or more)
  bool body_length = false;  // the signature has l=
  bool test_key = false;     // the key record has t=y (RFC 6376 3.6.1)
  std::string reason;     // why it is not a pass ("body hash mismatch", "key too short")

  DkimInput input() const { return DkimInput{result, domain, selector}; }
};

class DkimMessage {
 public:
  virtual ~DkimMessage() = default;
  // header - one header field as the MTA gives it: NAME without the colon,
  // VALUE as it follows the colon (leading space kept), folded lines with
  // LF or CRLF line ends.
  virtual void header(std::string_view name, std::string_view value) = 0;
  virtual void end_of_headers() = 0;
  // body - a chunk of the body, CRLF line ends (as the milter protocol
  // delivers it). Chunks may split lines anywhere.
  virtual void body(std::string_view chunk) = 0;
  // finish - end of message; one result per DKIM-Signature header field,
  // in header order. Empty when the message is unsigned.
  virtual std::vector<DkimSignatureResult> finish() = 0;
  // omitted - DKIM-Signature fields after the first kMaxDkimResults, which
  // finish() does not report (valid after finish()).
  virtual std::size_t omitted() const noexcept = 0;
};

class DkimVerifier {
 public:
  static Expected<std::unique_ptr<DkimVerifier>, std::string> create(Resolver& resolver, DkimOptions options = {});
  ~DkimVerifier();
  DkimVerifier(const DkimVerifier&) = delete;
  DkimVerifier& operator=(const DkimVerifier&) = delete;

  // begin - a new message; job_id (the queue id) names it in libopendkim logs.
  std::unique_ptr<DkimMessage> begin(std::string_view job_id);

  // Decoded public keys are kept across messages (OpenSSL 3 spends more on
  // decoding a key than on verifying with it; src/adapters/dkim/
  // dkim_key_cache.hpp). key_cache_active() tells whether libopendkim's
  // decoding calls reach the cache in this process; the counters say how
  // often it answered.
  struct KeyCacheCounters {
    std::uint64_t hits = 0, misses = 0, passed = 0;
    std::size_t entries = 0;
  };
  static bool key_cache_active();
  static KeyCacheCounters key_cache_counters();

 private:
  DkimVerifier();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarc
