// NAME
//   spf_syntax - RFC 7208 record syntax, checked before libspf2 sees a record
// STANDARDS
//   RFC 7208 4.5 (record selection), 4.6 (a syntax error anywhere is a
//   permerror), 4.6.1 (term syntax), 5.x (mechanism syntax), 6 (modifiers,
//   unknown ones ignored, redirect/exp at most once), 6.1 (redirect ignored
//   when "all" is present), 6.2 (explain-string), 7.1 (macro syntax),
//   7.3 (macro letters c, r, t only in explanation text).
// DESCRIPTION
//   libspf2 1.2.10 is lenient where RFC 7208 is strict (it accepts "%(" and
//   "a:museum", rejects CIDR /0, evaluates redirect= where it stands and
//   takes "exp-text=" as an explanation), and its compiler has a memory
//   safety bug in macro parsing (CVE-2023-42118, see
//   libspf2_compile_problem()). So every record is parsed here first:
//     parse_spf_record()   the whole record against the RFC 7208 ABNF;
//                          any error means permerror (4.6)
//     expand_macros()      every macro of a domain-spec or explanation,
//                          expanded here (libspf2's transformers are
//                          broken); libspf2 only sees literal text
//     rewrite_for_libspf2() the record libspf2 is given instead:
//                          unknown modifiers dropped (6), redirect moved
//                          last or dropped when "all" is present (6.1),
//                          ip4/ip6 "/0" spelled as two "/1" halves, and
//                          a/mx with a zero CIDR for the client's family
//                          marked with kCidrZeroMarker (the DNS layer
//                          answers such lookups, see spf_dns_bridge.hpp)
//     libspf2_compile_problem() whether libspf2's compiler would overrun
//                          its buffer on a text (CVE-2023-42118), or drop
//                          the tail of a record silently (the guards)
//   select_spf_records() and valid_check_domain() implement 4.5 and 4.3.
// SECURITY
//   Record text is untrusted DNS data: bytes outside %x20-7E are refused,
//   nothing here allocates more than a small multiple of the input.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"

namespace dmarc::spf2 {

// Appended to the domain-spec of an a/mx term whose CIDR length for the
// client's address family is 0: "match when any address record exists"
// (RFC 7208 5.3, 5.4), which libspf2 cannot express (it reads /0 as an
// error). The control character cannot occur in a checked record.
inline constexpr std::string_view kCidrZeroMarker = ".\x01" "cidr0";

enum class TermKind { All, Include, A, Mx, Ptr, Ip4, Ip6, Exists, Redirect, Exp, Unknown };

struct SpfTerm {
  TermKind kind = TermKind::Unknown;
  char qualifier = '+';         // mechanisms: + - ~ ?; '\0' for modifiers
  std::string name;             // lower-case mechanism or modifier name
  std::string domain_spec;      // normalised (see rewrite); may be empty
  std::string network;          // ip4/ip6: the address text
  std::optional<unsigned> cidr4, cidr6;
};

struct SpfRecord {
  std::vector<SpfTerm> terms;
};

// is_spf_version - TXT text that is an SPF record (RFC 7208 4.5: "v=spf1"
// in any case, then a space or the end).
bool is_spf_version(std::string_view txt) noexcept;

// select_spf_records - the SPF records among one name's TXT records.
std::vector<std::string> select_spf_records(const std::vector<std::string>& txt);

// parse_spf_record - TEXT (starting with the version) against RFC 7208
// 4.6.1 / 5 / 6 / 7.1, or a short reason for the permerror.
Expected<SpfRecord, std::string> parse_spf_record(std::string_view text);

// rewrite_for_libspf2 - the equivalent record libspf2 evaluates correctly
// for a client of the given family, RECORD's domain-specs already expanded
// and escaped (expand_macros, escape_for_libspf2); DOMAIN is the current
// domain (for an a/mx term without domain-spec and a zero CIDR).
std::string rewrite_for_libspf2(const SpfRecord& record, bool client_is_ipv6, std::string_view domain);

// check_explain_string - RFC 7208 6.2 explanation text: its normalised
// form, or nullopt when it is not a valid explain-string (the explanation
// is then ignored, 6.2).
std::optional<std::string> check_explain_string(std::string_view text);

// MacroValues - what the RFC 7208 7.3 macro letters stand for in one check.
struct MacroValues {
  std::string sender;         // s: <sender>
  std::string local;          // l: local-part of <sender>
  std::string sender_domain;  // o: domain of <sender>
  std::string helo;           // h: HELO/EHLO domain
  std::string receiver;       // r: the receiving host
  std::string ip_dotted;      // i: dotted quad, or 32 dot-separated nibbles (upper case, as 7.4)
  std::string ip_text;        // c: the address in its usual text form
  bool ipv6 = false;          // v: "ip6" or "in-addr"
  long long now = 0;          // t: seconds since the epoch
  // p: the validated domain name of <ip> for a current domain (7.3, 5.5);
  // empty function: "unknown".
  std::function<std::string(std::string_view domain)> validated_name;
};

// expand_macros - the expansion of a checked macro-string (domain-spec or
// explain-string) for current domain DOMAIN (RFC 7208 7.3): transformers
// split on the delimiters, reverse, keep the N rightmost parts and join
// with "."; upper-case letters are URL-escaped (RFC 3986 unreserved kept).
// Done here because libspf2 1.2.10's transformer code is wrong whenever N
// reaches the number of parts ("%{d3}" of "mail.example.com" gives
// "ail.example.com"); libspf2 is only ever given literal text.
std::string expand_macros(std::string_view text, const MacroValues& values, std::string_view domain);

// escape_for_libspf2 - LITERAL written as a macro-string libspf2 expands
// back to it: '%' as "%%", space as "%_".
std::string escape_for_libspf2(std::string_view literal);

// finish_explanation - the final explanation: US-ASCII only (RFC 7208 6.2),
// other bytes and controls as '?'.
std::string finish_explanation(std::string_view expanded);

// libspf2_compile_problem - a reason when libspf2 1.2.10's compiler would
// mis-handle TEXT (a record or an explanation):
//   - the compiled form of one term or macro-string over SPF_MAX_MECH_LEN /
//     SPF_MAX_MOD_LEN (511) octets. Upstream commit d14abff
//     (CVE-2023-42118, not in Debian's 1.2.10-7.2): when a term's compiled
//     data reaches 508 octets the space left for the next string literal
//     underflows and the literal is copied past a stack buffer. libspf2
//     rejects every such text anyway (after the copy); refusing it first
//     gives the same permerror without the overrun. (With macros expanded
//     before libspf2 sees a record this cannot happen; kept as a guard.)
//   - a record whose mechanisms together compile to more than 511 octets
//     (about 63 ip4 or 25 ip6 terms): libspf2 silently drops the terms past
//     that point ("-all" included) and evaluates the rest. We give
//     permerror instead.
std::optional<std::string> libspf2_compile_problem(std::string_view text, bool is_explanation);

// valid_check_domain - RFC 7208 4.3: a <domain> check_host() can look up
// (multi-label, labels of 1..63 octets, at most 253 octets, visible ASCII,
// not a domain literal). The trailing dot, if any, is ignored.
bool valid_check_domain(std::string_view domain) noexcept;

// valid_lookup_name - a name a DNS query can be composed from (labels of
// 1..63 octets, at most 253 in all, no space or control character).
bool valid_lookup_name(std::string_view name) noexcept;

// truncate_lookup_name - RFC 7208 7.3: drop leftmost labels until the
// expanded name is at most 253 octets.
std::string truncate_lookup_name(std::string_view name);

}  // namespace dmarc::spf2
