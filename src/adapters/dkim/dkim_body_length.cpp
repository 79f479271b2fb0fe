// dkim_body_length.cpp - see dkim_body_length.hpp
#include "adapters/dkim/dkim_body_length.hpp"

namespace dmarc::dkim {

void CanonBodyLength::end_line() noexcept {
  if (line_ == 0) {
    ++empty_lines_;
  } else {
    // A non-empty line makes the empty lines before it part of the body.
    committed_ += empty_lines_ * 2 + line_ + 2;
    empty_lines_ = 0;
  }
  line_ = 0;
  wsp_ = false;
}

void CanonBodyLength::octet(char c) noexcept {
  if (relaxed_ && (c == ' ' || c == '\t')) {
    wsp_ = true;  // counted as one SP only if something follows on the line
    return;
  }
  if (wsp_) ++line_;
  wsp_ = false;
  ++line_;
}

void CanonBodyLength::add(std::string_view chunk) noexcept {
  for (char c : chunk) {
    if (cr_) {
      cr_ = false;
      if (c == '\n') {
        end_line();
        continue;
      }
      octet('\r');  // a bare CR is an ordinary octet
    }
    if (c == '\r') {
      cr_ = true;
      continue;
    }
    octet(c);
  }
}

std::uint64_t CanonBodyLength::length() const noexcept {
  std::uint64_t line = line_ + (cr_ ? 1 : 0);
  if (relaxed_ && wsp_ && cr_) ++line;  // WSP before a bare CR at the end is not at the line's end
  // An unterminated last line gets its CRLF (3.4.3, 3.4.4).
  if (line > 0) return committed_ + empty_lines_ * 2 + line + 2;
  if (committed_ == 0 && !relaxed_) return 2;  // simple: an empty body is one CRLF
  return committed_;
}

}  // namespace dmarc::dkim
