// NAME
//   domain - domain name normalisation for DMARC comparisons
// STANDARDS
//   RFC 1035 2.3.4 (sizes), RFC 5890/5891 (A-labels), RFC 3492 (Punycode)
// DESCRIPTION
//   normalize_domain() lower-cases ASCII, removes one trailing dot, turns
//   U-labels into A-labels ("xn--") and checks the result is a plausible
//   host name: 1..253 octets, labels 1..63 octets, no empty label. It
//   returns nullopt for anything else, so that callers compare canonical
//   forms only.
//   labels() splits a normalised name; label_count() counts labels.
// DIAGNOSTICS
//   nullopt for invalid input; never throws except std::bad_alloc.
// SECURITY
//   Input is untrusted (headers, DNS, envelope). Lengths are bounded before
//   any work proportional to them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmarc {

inline constexpr std::size_t kMaxDomainLength = 253;
inline constexpr std::size_t kMaxLabelLength = 63;

// normalize_domain - canonical A-label, lower-case form, or nullopt.
std::optional<std::string> normalize_domain(std::string_view name);

// punycode_encode - RFC 3492 encoding of one UTF-8 label (without "xn--"),
// or nullopt for invalid UTF-8 or overflow.
std::optional<std::string> punycode_encode(std::string_view utf8_label);

// labels - split a normalised domain at dots ("a.b.c" -> {"a","b","c"}).
std::vector<std::string_view> labels(std::string_view domain);
std::size_t label_count(std::string_view domain) noexcept;

// parent_domain - DOMAIN without its leftmost N labels ("" when none remain).
std::string_view strip_labels(std::string_view domain, std::size_t n) noexcept;
// last_labels - the rightmost N labels of DOMAIN (all of it if fewer).
std::string_view last_labels(std::string_view domain, std::size_t n) noexcept;

// is_subdomain_or_same - true when CHILD equals PARENT or ends in ".PARENT".
// Both must be normalised.
bool is_subdomain_or_same(std::string_view child, std::string_view parent) noexcept;

// ascii_iequals - equal when ASCII letters are folded to lower case (DNS
// names, RFC 4343; tag names and keywords of DMARC, SPF, DKIM, config).
bool ascii_iequals(std::string_view a, std::string_view b) noexcept;
// ascii_lowercase - S with ASCII letters in lower case (other octets kept).
std::string ascii_lowercase(std::string_view s);

}  // namespace dmarc
