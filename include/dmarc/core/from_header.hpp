// NAME
//   from_header - extract the author domains from an RFC 5322 From field
// STANDARDS
//   RFC 5322 3.4 (address specification), 3.6.2 (originator fields),
//   4.4 (obsolete addressing); RFC 2047 (encoded words in display names);
//   RFC 6532 (UTF-8 in headers); RFC 7489 6.6.1 / RFC 9989 (author domain)
// DESCRIPTION
//   parse_from_header() takes the field body of a From header (the text
//   after "From:", unfolded or not) and returns every mailbox it names, in
//   order, with its domain normalised to a lower-case A-label. It accepts
//   display names, quoted strings with quoted-pairs, comments (nested),
//   groups ("undisclosed: a@b.example;"), angle addresses, obsolete route
//   syntax and RFC 2047 encoded words in display names; it rejects what
//   would let an attacker make two parsers disagree on the author domain:
//   text after an address ("user@example.net>"), unbalanced quotes, angle
//   brackets or comments, a missing or invalid domain, a domain literal
//   ([192.0.2.1]) which has no DMARC policy. The RFC 5322 4.4 obsolete
//   list forms (", a@example.com", "a@example.com, ,") are read: their
//   empty elements name no mailbox (CVE-2021-34555 was a crash on them).
//   A field that names no mailbox at all (an empty group,
//   "undisclosed-recipients:;", RFC 6854) is the error Empty.
//
//   lenient_from_domains() is for a field that parse_from_header()
//   refused: it lists every domain a reader could take for the author's
//   (see there). The caller evaluates them all, so a sloppy field costs
//   nothing and a hostile one cannot hide a domain.
//   Several mailboxes are all returned (CVE-2019-16378): the caller decides.
// DIAGNOSTICS
//   FromError with a code and the byte offset where parsing stopped.
// SECURITY
//   Input is untrusted; it is bounded to kMaxFromHeaderLength octets (64
//   KiB: a 20 KB folded display name or a thousand nested comments are
//   read; no mailer writes more, and Postfix's header_size_limit is 100 KiB
//   for the whole header) and kMaxFromAddresses addresses, and may contain
//   NUL bytes. Work is linear in the length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"

namespace dmarc {

inline constexpr std::size_t kMaxFromHeaderLength = 64 * 1024;
inline constexpr std::size_t kMaxFromAddresses = 64;

struct Mailbox {
  std::string display_name;  // decoded (RFC 2047), may be empty
  std::string local_part;    // as written, quoting removed
  std::string domain;        // normalised A-label, lower case
};

enum class FromErrorCode {
  Empty,              // no mailbox at all
  EmptyGroup,         // only groups, and they name no mailbox ("undisclosed-recipients:;")
  TooLong,            // over kMaxFromHeaderLength
  TooManyAddresses,   // over kMaxFromAddresses
  UnbalancedQuote,
  UnbalancedComment,
  UnbalancedAngle,
  EmptyListElement,   // ", ," or a leading/trailing comma
  MissingAt,          // an addr-spec without '@'
  BadLocalPart,
  BadDomain,          // empty, invalid or not normalisable
  DomainLiteral,      // [192.0.2.1]: no DMARC policy can be found
  TrailingGarbage,    // text after a complete address
  NulByte,
  Syntax,             // anything else
};

struct FromError {
  FromErrorCode code;
  std::size_t offset = 0;  // byte offset into the input where it was found
};

std::string_view to_token(FromErrorCode c) noexcept;

struct FromHeader {
  std::vector<Mailbox> mailboxes;  // at least one
  // distinct_domains - the domains of all mailboxes, each once, in order.
  std::vector<std::string> distinct_domains() const;
};

// parse_from_header - parse a From field body. Never throws except bad_alloc.
Expected<FromHeader, FromError> parse_from_header(std::string_view field_body);

// lenient_from_domains - the domains any reasonable reading of a field
// that does not parse could take as the author's: for every "@" anywhere
// in it (display names, quoted strings and comments included, since a
// reader may show any of them), the domain that follows, read as RFC 5322
// 3.4.1 / 4.4 obs-domain would (atoms and dots, white space around the
// dots allowed). Each distinct domain once, in order, normalised; at most
// kMaxFromAddresses. What follows an "@" that is not a domain name (a
// domain literal, nothing) adds none. Empty: no domain can be found.
std::vector<std::string> lenient_from_domains(std::string_view field_body);

}  // namespace dmarc
