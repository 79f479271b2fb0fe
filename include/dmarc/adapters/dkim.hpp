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
//   message is never copied whole.
//   Every DKIM-Signature is reported, in header order, with its own result:
//     pass       the signature verified
//     fail       the signature or body hash did not verify
//     neutral    the signature could not be evaluated in a way that is
//                not the signer's fault (unused)
//     policy     it verified but local policy refuses it: rsa-sha1 or an
//                RSA key under min_rsa_bits (RFC 8301 3.1, 3.2)
//     permerror  syntax error in the signature or key record, no key
//     temperror  the key lookup failed temporarily
//   Signatures with l= verify normally and are flagged (body_length).
// THREADING
//   One DkimVerifier (one DKIM_LIB) serves all threads; each DkimMessage
//   is used by one thread at a time.
// DIAGNOSTICS
//   create() returns a message when libopendkim cannot be set up. No
//   function throws except std::bad_alloc.
#pragma once

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
  // Signatures looked at per message; the rest are reported as not checked.
  unsigned max_signatures = 10;
  // Pin the verifier's clock (t=, x=); for tests with fixed vectors.
  std::optional<std::time_t> fixed_time;
};

struct DkimSignatureResult {
  AuthResult result = AuthResult::None;
  std::string domain;     // d=
  std::string selector;   // s=
  std::string identity;   // i=, when present
  std::string algorithm;  // a=: "rsa-sha256", "ed25519-sha256", "rsa-sha1", ...
  unsigned key_bits = 0;  // size of the public key, 0 when unknown
  std::string b_prefix;   // the first characters of b= (RFC 8601 header.b: 8 or more)
  bool body_length = false;  // the signature has l=
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
};

class DkimVerifier {
 public:
  static Expected<std::unique_ptr<DkimVerifier>, std::string> create(Resolver& resolver, DkimOptions options = {});
  ~DkimVerifier();
  DkimVerifier(const DkimVerifier&) = delete;
  DkimVerifier& operator=(const DkimVerifier&) = delete;

  // begin - a new message; job_id (the queue id) names it in libopendkim logs.
  std::unique_ptr<DkimMessage> begin(std::string_view job_id);

 private:
  DkimVerifier();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarc
