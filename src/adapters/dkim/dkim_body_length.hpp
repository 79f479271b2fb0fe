// NAME
//   dkim_body_length - the length of a body after DKIM body
//   canonicalization, counted as the body streams by
// STANDARDS
//   RFC 6376 3.4.3 (simple: trailing empty lines ignored, an empty body is
//   one CRLF), 3.4.4 (relaxed: WSP at line ends ignored, WSP runs are one
//   SP, trailing empty lines ignored), 3.5 l=, 8.2 (content after l=).
// DESCRIPTION
//   libopendkim stops canonicalizing at l= and reports the raw body size,
//   which counts trailing blank lines and spaces that canonicalization
//   removes; so whether anything follows the signed length is counted
//   here: a signature with l= covers the whole body exactly when
//   length() == l. Chunks may split lines (and CRLF) anywhere; counting
//   is all it does, nothing is copied.
#pragma once

#include <cstdint>
#include <string_view>

namespace dmarc::dkim {

class CanonBodyLength {
 public:
  explicit CanonBodyLength(bool relaxed) noexcept : relaxed_(relaxed) {}
  void add(std::string_view chunk) noexcept;
  // length - the canonicalized length of what was added so far, as if it
  // were the whole body.
  std::uint64_t length() const noexcept;

 private:
  void octet(char c) noexcept;
  void end_line() noexcept;
  bool relaxed_;
  bool cr_ = false;             // the last octet was a CR not yet known to start CRLF
  bool wsp_ = false;            // relaxed: WSP seen since the last other octet of this line
  std::uint64_t committed_ = 0;  // through the last non-empty line, its CRLF included
  std::uint64_t empty_lines_ = 0;  // empty lines since then
  std::uint64_t line_ = 0;      // the current line so far (relaxed: WSP runs not yet counted)
};

}  // namespace dmarc::dkim
