// NAME
//   auth_results - the Authentication-Results header field (RFC 8601)
// STANDARDS
//   RFC 8601 2.2 (syntax), 2.3 (authserv-id), 2.7.1 (dkim: header.d,
//   header.s, header.b per RFC 6008), 2.7.2 (spf: smtp.mailfrom,
//   smtp.helo), 5 (removing forged fields: "MUST ... delete" those that
//   claim our authserv-id); RFC 9989 (dmarc: header.from, policy.dmarc);
//   RFC 2045 5.1 (token), RFC 5322 3.2.4 (quoted-string).
// DESCRIPTION
//   format_auth_results() builds the field body (the text after
//   "Authentication-Results:"), folded one method per line. Every value
//   that comes from the network (HELO, MAIL FROM, d=, s=, From domain) is
//   written as a token when it is one and as a quoted-string otherwise;
//   CR, LF, NUL, other controls and non-ASCII bytes become '?', so no
//   value can end the header or start a new one. Values are capped at
//   kMaxValueLength bytes.
//   authserv_id_of() reads the authserv-id of an existing field body, so
//   the milter can delete forged fields that carry its own id.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/evaluate.hpp"

namespace dmarc {

inline constexpr std::size_t kMaxValueLength = 255;

struct ArSpf {
  AuthResult result = AuthResult::None;
  SpfScope scope = SpfScope::MailFrom;
  std::string identity;  // smtp.mailfrom: the address (or domain); smtp.helo: the name
  std::string comment;   // e.g. the problem of a temperror/permerror
};

struct ArDkim {
  AuthResult result = AuthResult::None;
  std::string domain;    // header.d
  std::string selector;  // header.s
  std::string b_prefix;  // header.b (RFC 6008: at least 8 characters)
  std::string comment;   // e.g. "2048-bit key", the reason of a failure
};

struct ArDmarc {
  DmarcResult result = DmarcResult::None;
  std::string header_from;    // header.from
  std::string policy;         // policy.dmarc: none, quarantine, reject ("" to omit)
  std::string comment;        // e.g. "p=reject sp=none dis=quarantine"
};

struct AuthResultsFields {
  std::string authserv_id;
  std::optional<ArSpf> spf;
  std::vector<ArDkim> dkim;     // empty: "dkim=none" when dkim_checked
  bool dkim_checked = true;
  std::vector<ArDmarc> dmarc;   // one per author domain
};

// format_auth_results - the field body, starting with a space, folded
// with CRLF TAB between methods when crlf is true (LF TAB otherwise, as
// libmilter's smfi_insheader expects on Postfix and Sendmail).
std::string format_auth_results(const AuthResultsFields& f, bool crlf = false);

// ar_value - VALUE as an RFC 8601 value: a token, or a quoted-string.
std::string ar_value(std::string_view value);
// ar_pvalue - a property value: like ar_value, but an addr-spec or domain
// made of atext stays bare (RFC 8601 2.2 pvalue).
std::string ar_pvalue(std::string_view value);
// ar_comment - TEXT as a comment, with parentheses and backslashes escaped.
std::string ar_comment(std::string_view text);

// authserv_id_of - the authserv-id of an Authentication-Results field
// body, or nullopt when it cannot be read.
std::optional<std::string> authserv_id_of(std::string_view field_body);

}  // namespace dmarc
