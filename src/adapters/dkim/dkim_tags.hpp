// NAME
//   dkim_tags - the RFC 6376 tag=value list, checked strictly
// STANDARDS
//   RFC 6376 3.2 (tag-list syntax, duplicate tags), 3.5 (signature tags),
//   3.6.1 (key record tags), 2.11 (dkim-quoted-printable, for i=)
// SYNOPSIS
//   auto tags = dmarc::dkim::parse_tag_list(value);
//   if (!tags) reason = tags.error();      // "duplicate tag d="
//   else if (auto d = tags->get("d")) ...;
// DESCRIPTION
//   libopendkim parses tag-lists leniently: a repeated tag silently
//   replaces the earlier value, and a signature whose tag-list it finds
//   broken is dropped without a trace. RFC 6376 3.2 says a tag-list with a
//   duplicate tag is invalid as a whole, so the adapter parses every
//   DKIM-Signature value and every key record itself with this strict
//   parser and reports permerror for what it refuses, whatever
//   libopendkim made of it.
//
//   parse_tag_list() accepts exactly
//     tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
//     tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//     tag-name  = ALPHA *( ALPHA / DIGIT / "_" )
//     tag-value = [ tval *( 1*(WSP / FWS) tval ) ],  tval = 1*%x21-3A / %x3C-7E
//   with FWS taken as any run of SP, HTAB, CR and LF (folding has been
//   normalised before), plus whitespace after a final ";" (seen in real
//   key records). Tag names are case-sensitive (3.2). Values are kept with
//   their inner whitespace; strip_fws() removes it (b=, bh=, p=).
// DIAGNOSTICS
//   A short reason: "empty tag-list", "duplicate tag d=", "invalid
//   character 0x00 in tag-list", "tag without value", ...
// SECURITY
//   Input is untrusted (a header field or a DNS TXT record); it is only
//   scanned, never used as a format string, and the caller bounds its size.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmarc/core/expected.hpp"

namespace dmarc::dkim {

class TagList {
 public:
  // get - the value of tag NAME (case-sensitive), or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  const std::vector<std::pair<std::string, std::string>>& tags() const noexcept { return tags_; }

 private:
  friend Expected<TagList, std::string> parse_tag_list(std::string_view text);
  std::vector<std::pair<std::string, std::string>> tags_;
};

// parse_tag_list - TEXT as an RFC 6376 3.2 tag-list, or why it is not one.
Expected<TagList, std::string> parse_tag_list(std::string_view text);

// strip_fws - TEXT without SP, HTAB, CR and LF.
std::string strip_fws(std::string_view text);

// qp_decode - RFC 6376 2.11 dkim-quoted-printable ("=40" -> "@"); a
// malformed escape is kept as it is.
std::string qp_decode(std::string_view text);

// parse_unsigned - a decimal number of at most 12 digits (RFC 6376 3.5 t=,
// x=; l= has up to 76 digits but more than 12 cannot be a real length).
std::optional<unsigned long long> parse_unsigned(std::string_view text) noexcept;

// signature_value_error - RFC 6376 3.5 value syntax that libopendkim does
// not enforce before using the value: d= is a domain-name and s= a
// selector (sub-domain labels; libopendkim would squeeze out inner
// whitespace and look the result up), t= and x= are 1*12DIGIT, l= is
// 1*76DIGIT. nullopt when TAGS are fine.
std::optional<std::string> signature_value_error(const TagList& tags);

// valid_key_name - is NAME a usable "selector._domainkey.domain": every
// label 1..63 octets of letters, digits, "-" and "_", at most 253 octets
// (RFC 6376 3.1 selector and 3.5 d= are sub-domain sequences; "_" is
// tolerated because selectors with it exist in the wild).
bool valid_key_name(std::string_view name) noexcept;

}  // namespace dmarc::dkim
