// from_header.cpp - RFC 5322 From field body parser (3.4, 3.6.2, 4.4; RFC 6854, 2047, 6532)
//
// Two passes, both linear in the input:
//   1. Lexer splits the body into atoms, quoted strings, domain literals and
//      specials, dropping CFWS (RFC 5322 3.2.2) but remembering whether any
//      preceded each token. Comments nest with an iterative depth counter.
//   2. Parser walks the tokens with one token of look-ahead per decision
//      (the words of a phrase/local-part are collected once, then the next
//      token says whether they were a display name, a group name or a
//      local part).
// Anything the grammar does not allow is an error: the caller must not
// guess an author domain from a header that two parsers could read two
// ways.
//
// Deliberate tolerances: any octet >= 0x80 counts as atext/qtext/ctext
// (RFC 6532 3.2 widens these to valid UTF-8; 8-bit legacy display names are
// common and a domain must still pass normalize_domain, which wants valid
// UTF-8); folds may be LF + WSP as well as CRLF + WSP (milters see LF line
// ends); a line break ending the body is ignored.
#include "dmarc/core/from_header.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dmarc/core/domain.hpp"

namespace dmarc {

std::string_view to_token(FromErrorCode c) noexcept {
  switch (c) {
    case FromErrorCode::Empty: return "empty";
    case FromErrorCode::EmptyGroup: return "empty_group";
    case FromErrorCode::TooLong: return "too_long";
    case FromErrorCode::TooManyAddresses: return "too_many_addresses";
    case FromErrorCode::UnbalancedQuote: return "unbalanced_quote";
    case FromErrorCode::UnbalancedComment: return "unbalanced_comment";
    case FromErrorCode::UnbalancedAngle: return "unbalanced_angle";
    case FromErrorCode::EmptyListElement: return "empty_list_element";
    case FromErrorCode::MissingAt: return "missing_at";
    case FromErrorCode::BadLocalPart: return "bad_local_part";
    case FromErrorCode::BadDomain: return "bad_domain";
    case FromErrorCode::DomainLiteral: return "domain_literal";
    case FromErrorCode::TrailingGarbage: return "trailing_garbage";
    case FromErrorCode::NulByte: return "nul_byte";
    case FromErrorCode::Syntax: return "syntax";
  }
  return "syntax";
}

// FromHeader::distinct_domains - the domains of all mailboxes, each once, in order.
std::vector<std::string> FromHeader::distinct_domains() const {
  std::vector<std::string> out;
  for (const auto& m : mailboxes) {
    bool seen = false;
    for (const auto& d : out) {
      if (d == m.domain) {
        seen = true;
        break;
      }
    }
    if (!seen) out.push_back(m.domain);
  }
  return out;
}

namespace {

// Comments may nest (RFC 5322 3.2.2 ccontent includes comment). The depth
// is a counter, not recursion, so any depth the length bound allows is read.
constexpr std::size_t kMaxCommentDepth = kMaxFromHeaderLength;

enum class Tok { Atom, Quoted, DomainLit, Special, End };

struct Token {
  Tok kind = Tok::End;
  char special = 0;           // Special: one of < > @ , ; : .
  std::size_t offset = 0;     // first octet in the input
  bool space_before = false;  // CFWS between the previous token and this one
  std::string text;           // Atom: as written; Quoted: quoting removed
};

bool is_wsp(char c) noexcept { return c == ' ' || c == '\t'; }

// is_atext - RFC 5322 3.2.3 atext, widened by RFC 6532 3.2 (UTF8-non-ascii;
// here any octet >= 0x80, see the file comment).
bool is_atext(char c) noexcept {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) return true;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_special_char(char c) noexcept {
  return c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':' || c == '.';
}

// line_break - length of the CRLF (or bare LF) at I, 0 when there is none.
std::size_t line_break(std::string_view s, std::size_t i) noexcept {
  if (s[i] == '\n') return 1;
  if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') return 2;
  return 0;
}

// Result of looking at a CR or LF: RFC 5322 3.2.2 FWS is a line break
// followed by WSP (the fold); a line break that ends the body is the end of
// the field; anything else (bare CR, a break followed by text, which would
// start a new header field) is not allowed inside a field body.
enum class Break { Fold, Final, Bad };

Break classify_break(std::string_view s, std::size_t i, std::size_t& len) noexcept {
  len = line_break(s, i);
  if (len == 0) return Break::Bad;
  if (i + len == s.size()) return Break::Final;
  return is_wsp(s[i + len]) ? Break::Fold : Break::Bad;
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  // run - tokenise the whole body; the last token is End at s.size().
  std::optional<FromError> run(std::vector<Token>& out) {
    while (true) {
      bool space = false;
      if (auto e = skip_cfws(space)) return e;
      Token t;
      t.offset = i_;
      t.space_before = space;
      if (i_ >= s_.size()) {
        t.kind = Tok::End;
        out.push_back(std::move(t));
        return std::nullopt;
      }
      char c = s_[i_];
      if (is_atext(c)) {
        // RFC 5322 3.2.3 atom / dot-atom-text: runs of atext; the dots of a
        // dot-atom are separate Special tokens, so obs-local-part and
        // obs-domain (4.4: CFWS around the dots) come for free.
        std::size_t start = i_;
        while (i_ < s_.size() && is_atext(s_[i_])) ++i_;
        t.kind = Tok::Atom;
        t.text.assign(s_.substr(start, i_ - start));
      } else if (c == '"') {
        t.kind = Tok::Quoted;
        if (auto e = quoted_string(t.text)) return e;
      } else if (c == '[') {
        t.kind = Tok::DomainLit;
        if (auto e = domain_literal()) return e;
      } else if (is_special_char(c)) {
        t.kind = Tok::Special;
        t.special = c;
        ++i_;
      } else {
        // "]", "\" outside a quoted string, controls, DEL: RFC 5322 3.2.3
        // specials/CTLs that no rule allows here.
        return FromError{FromErrorCode::Syntax, i_};
      }
      out.push_back(std::move(t));
    }
  }

 private:
  // skip_cfws - RFC 5322 3.2.2 CFWS: FWS (with 4.2 obs-FWS) and comments.
  std::optional<FromError> skip_cfws(bool& space) {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (is_wsp(c)) {
        ++i_;
        space = true;
      } else if (c == '\r' || c == '\n') {
        std::size_t len = 0;
        switch (classify_break(s_, i_, len)) {
          case Break::Fold: i_ += len; break;
          case Break::Final: i_ += len; break;
          case Break::Bad: return FromError{FromErrorCode::Syntax, i_};
        }
        space = true;
      } else if (c == '(') {
        if (auto e = comment()) return e;
        space = true;
      } else if (c == ')') {
        return FromError{FromErrorCode::UnbalancedComment, i_};
      } else {
        break;
      }
    }
    return std::nullopt;
  }

  // comment - RFC 5322 3.2.2: "(" *([FWS] ccontent) [FWS] ")", ccontent =
  // ctext / quoted-pair / comment. Nesting is counted, not recursed.
  std::optional<FromError> comment() {
    const std::size_t open = i_;
    std::size_t depth = 0;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '(') {
        if (++depth > kMaxCommentDepth) return FromError{FromErrorCode::Syntax, i_};
        ++i_;
      } else if (c == ')') {
        ++i_;
        if (--depth == 0) return std::nullopt;
      } else if (c == '\\') {
        // RFC 5322 3.2.1 quoted-pair (4.1 obs-qp: any ASCII but a line break).
        if (i_ + 1 >= s_.size()) break;
        if (s_[i_ + 1] == '\r' || s_[i_ + 1] == '\n') return FromError{FromErrorCode::Syntax, i_};
        i_ += 2;
      } else if (c == '\r' || c == '\n') {
        std::size_t len = 0;
        Break b = classify_break(s_, i_, len);
        if (b == Break::Final) break;
        if (b == Break::Bad) return FromError{FromErrorCode::Syntax, i_};
        i_ += len;
      } else {
        ++i_;  // ctext, 4.1 obs-ctext, RFC 6532 UTF-8
      }
    }
    return FromError{FromErrorCode::UnbalancedComment, open};
  }

  // quoted_string - RFC 5322 3.2.4: DQUOTE *([FWS] qcontent) [FWS] DQUOTE.
  // Quoted-pairs are unescaped and folds removed ("the CRLF in any FWS ...
  // is semantically invisible"), keeping the WSP.
  std::optional<FromError> quoted_string(std::string& text) {
    const std::size_t open = i_;
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '"') {
        ++i_;
        return std::nullopt;
      }
      if (c == '\\') {
        // RFC 5322 3.2.1 quoted-pair / 4.1 obs-qp; an escaped line break
        // would hide a header boundary.
        if (i_ + 1 >= s_.size()) break;
        char d = s_[i_ + 1];
        if (d == '\r' || d == '\n') return FromError{FromErrorCode::Syntax, i_};
        text.push_back(d);
        i_ += 2;
      } else if (c == '\r' || c == '\n') {
        std::size_t len = 0;
        Break b = classify_break(s_, i_, len);
        if (b == Break::Final) break;
        if (b == Break::Bad) return FromError{FromErrorCode::Syntax, i_};
        i_ += len;
      } else {
        text.push_back(c);  // qtext, 4.1 obs-qtext, RFC 6532 UTF-8
        ++i_;
      }
    }
    return FromError{FromErrorCode::UnbalancedQuote, open};
  }

  // domain_literal - RFC 5322 3.4.1: "[" *([FWS] dtext) [FWS] "]" (4.4
  // obs-dtext allows quoted-pairs). Only skipped: the parser refuses it as
  // an author domain and ignores it in an obsolete route.
  std::optional<FromError> domain_literal() {
    const std::size_t open = i_;
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == ']') {
        ++i_;
        return std::nullopt;
      }
      if (c == '[') return FromError{FromErrorCode::Syntax, i_};
      if (c == '\\') {
        if (i_ + 1 >= s_.size()) break;
        if (s_[i_ + 1] == '\r' || s_[i_ + 1] == '\n') return FromError{FromErrorCode::Syntax, i_};
        i_ += 2;
      } else if (c == '\r' || c == '\n') {
        std::size_t len = 0;
        Break b = classify_break(s_, i_, len);
        if (b == Break::Final) break;
        if (b == Break::Bad) return FromError{FromErrorCode::Syntax, i_};
        i_ += len;
      } else {
        ++i_;
      }
    }
    return FromError{FromErrorCode::Syntax, open};
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// RFC 2047 4.1 "B" encoding is RFC 2045 6.8 base64.
int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;  // RFC 2047 4.2 says upper case; be lenient
  return -1;
}

bool decode_b(std::string_view text, std::string& out) {
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (char c : text) {
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return false;  // data after padding
    int v = base64_value(c);
    if (v < 0) return false;
    acc = ((acc << 6) | static_cast<std::uint32_t>(v)) & 0xFFFFFFu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  return pad <= 2;
}

bool decode_q(std::string_view text, std::string& out) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out.push_back(' ');  // RFC 2047 4.2 (2)
    } else if (c == '=') {
      // RFC 2047 4.2 (1): "=" followed by two hexadecimal digits.
      if (i + 2 >= text.size()) return false;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '?' || c == ' ' || static_cast<unsigned char>(c) >= 0x7F ||
               static_cast<unsigned char>(c) < 0x21) {
      return false;  // RFC 2047 4.2 (3): printable ASCII only
    } else {
      out.push_back(c);
    }
  }
  return true;
}

// decode_encoded_word - RFC 2047 2: "=?" charset "?" encoding "?"
// encoded-text "?=" at POS of WORD; appends the decoded octets to OUT
// (charset not converted) and advances POS. False if it is not one.
bool decode_encoded_word(std::string_view word, std::size_t& pos, std::string& out) {
  if (word.substr(pos, 2) != "=?") return false;
  std::size_t q1 = word.find('?', pos + 2);
  if (q1 == std::string_view::npos || q1 == pos + 2) return false;  // charset (RFC 2231 5: may carry *lang)
  if (q1 + 2 >= word.size() || word[q1 + 2] != '?') return false;
  char enc = word[q1 + 1];
  std::size_t text_start = q1 + 3;
  std::size_t end = word.find("?=", text_start);
  if (end == std::string_view::npos) return false;
  std::string_view text = word.substr(text_start, end - text_start);
  std::size_t before = out.size();
  bool ok = false;
  if (enc == 'B' || enc == 'b') ok = decode_b(text, out);
  else if (enc == 'Q' || enc == 'q') ok = decode_q(text, out);
  if (!ok) return false;
  // A decoded NUL or line break would smuggle what the header cannot carry.
  for (std::size_t i = before; i < out.size(); ++i) {
    if (out[i] == '\0' || out[i] == '\r' || out[i] == '\n') return false;
  }
  pos = end + 2;
  return true;
}

// decode_encoded_words - an atom made only of encoded-words (RFC 2047 5(3):
// they may replace a word of a phrase), decoded; nullopt otherwise, and the
// atom is then displayed as written.
std::optional<std::string> decode_encoded_words(std::string_view atom) {
  if (atom.empty()) return std::nullopt;
  std::string out;
  std::size_t pos = 0;
  while (pos < atom.size()) {
    if (!decode_encoded_word(atom, pos, out)) return std::nullopt;
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Expected<FromHeader, FromError> run() {
    FromHeader h;
    if (!address_list(h.mailboxes)) return Unexpected{err_};
    // RFC 5322 3.6.2: the From field names at least one mailbox; a lone
    // empty group ("undisclosed-recipients:;", RFC 6854 syntax) does not.
    if (h.mailboxes.empty()) return Unexpected{FromError{saw_group_ ? FromErrorCode::EmptyGroup : FromErrorCode::Empty, 0}};
    return h;
  }

 private:
  const Token& peek() const { return toks_[pos_]; }
  bool at_special(char c) const { return peek().kind == Tok::Special && peek().special == c; }
  static bool is_word(const Token& t) { return t.kind == Tok::Atom || t.kind == Tok::Quoted; }
  static bool is_dot(const Token& t) { return t.kind == Tok::Special && t.special == '.'; }

  bool fail(FromErrorCode code, std::size_t offset) {
    err_ = FromError{code, offset};
    return false;
  }

  // address_list - RFC 5322 3.4 address-list, as RFC 6854 2.1 allows for
  // From (groups included); the top level ends at End.
  bool address_list(std::vector<Mailbox>& out) {
    if (peek().kind == Tok::End) return fail(FromErrorCode::Empty, peek().offset);
    return list(out, false);
  }

  // list - the address-list (IN_GROUP false, ends at End) or the
  // mailbox-list of a group (RFC 5322 3.4 group-list, ends at ";"), with
  // the obsolete forms RFC 5322 4.4 obliges parsers to accept:
  //   obs-addr-list  = *([CFWS] ",") address *("," [address / CFWS])
  //   obs-mbox-list  = *([CFWS] ",") mailbox *("," [mailbox / CFWS])
  //   obs-group-list = 1*([CFWS] ",") [CFWS]
  // i.e. empty elements (a leading or trailing comma, ", ,") name no
  // mailbox and are skipped. OpenDMARC crashed on them (CVE-2021-34555);
  // here they cannot hide a mailbox: every element that is not empty must
  // be a whole address, and every address is returned.
  bool list(std::vector<Mailbox>& out, bool in_group) {
    auto at_end = [&] {
      const Token& t = peek();
      return t.kind == Tok::End || (in_group && t.kind == Tok::Special && t.special == ';');
    };
    while (true) {
      while (at_special(',')) ++pos_;  // empty elements
      if (at_end()) break;
      if (!address(out, in_group)) return false;
      const Token& n = peek();
      if (n.kind == Tok::Special && n.special == ',') {
        ++pos_;
        continue;
      }
      if (at_end()) break;
      // RFC 5322 3.4: nothing may follow an address but "," (or the ";"
      // closing its group). "user@example.net>" is OpenDMARC issue #342.
      if (n.kind == Tok::Special && n.special == '>') return fail(FromErrorCode::UnbalancedAngle, n.offset);
      if (in_group && n.kind == Tok::End) return fail(FromErrorCode::Syntax, n.offset);  // no ";"
      return fail(FromErrorCode::TrailingGarbage, n.offset);
    }
    // A group that never reaches its ";" ("g:", "g: a@b.example,").
    if (in_group && peek().kind == Tok::End) return fail(FromErrorCode::Syntax, peek().offset);
    return true;
  }

  // address - RFC 5322 3.4 address = mailbox / group; mailbox = name-addr /
  // addr-spec. The leading words decide once the next token is seen.
  bool address(std::vector<Mailbox>& out, bool in_group) {
    const std::size_t first = pos_;
    const std::size_t start_offset = peek().offset;
    while (is_word(peek()) || is_dot(peek())) ++pos_;
    const std::size_t last = pos_;
    const Token& t = peek();

    if (t.kind == Tok::Special && t.special == '<') {
      // RFC 5322 3.4 name-addr = [display-name] angle-addr.
      Mailbox m;
      if (!display_name(first, last, m.display_name)) return false;
      const std::size_t lt = t.offset;
      ++pos_;
      if (!angle_addr(lt, m)) return false;
      return append(out, std::move(m), start_offset);
    }
    if (t.kind == Tok::Special && t.special == ':') {
      // RFC 5322 3.4 group = display-name ":" [group-list] ";" [CFWS].
      if (in_group) return fail(FromErrorCode::Syntax, t.offset);  // groups do not nest
      if (first == last) return fail(FromErrorCode::Syntax, t.offset);
      std::string ignored;
      if (!display_name(first, last, ignored)) return false;
      ++pos_;
      if (!list(out, true)) return false;
      saw_group_ = true;
      ++pos_;  // the ";" (list() returned true only on it)
      return true;
    }
    if (t.kind == Tok::Special && t.special == '@') {
      // RFC 5322 3.4.1 addr-spec = local-part "@" domain, not in angles.
      Mailbox m;
      if (!local_part(first, last, m.local_part)) return false;
      ++pos_;
      if (!domain(m.domain)) return false;
      // The domain ended at something other than "." and we are outside
      // angle brackets: another word or "@" means the domain had a space
      // ("a@exa mple.com") or a second "@".
      const Token& n = peek();
      if (n.kind == Tok::Atom || (n.kind == Tok::Special && n.special == '@')) {
        return fail(FromErrorCode::BadDomain, n.offset);
      }
      return append(out, std::move(m), start_offset);
    }
    if (first != last) {
      if (t.kind == Tok::Special && t.special == '>') return fail(FromErrorCode::UnbalancedAngle, t.offset);
      return fail(FromErrorCode::MissingAt, t.offset);
    }
    if (t.kind == Tok::Special && t.special == '>') return fail(FromErrorCode::UnbalancedAngle, t.offset);
    if (t.kind == Tok::DomainLit) return fail(FromErrorCode::MissingAt, t.offset);
    return fail(FromErrorCode::Syntax, t.offset);
  }

  // angle_addr - RFC 5322 3.4 angle-addr = [CFWS] "<" addr-spec ">" [CFWS]
  // and 4.4 obs-angle-addr = [CFWS] "<" obs-route addr-spec ">" [CFWS];
  // the "<" at LT is consumed.
  bool angle_addr(std::size_t lt, Mailbox& m) {
    if (at_special('@') || at_special(',')) {
      if (!obs_route()) return false;
    }
    const std::size_t first = pos_;
    while (is_word(peek()) || is_dot(peek())) ++pos_;
    const std::size_t last = pos_;
    const Token& t = peek();
    if (!(t.kind == Tok::Special && t.special == '@')) {
      if (t.kind == Tok::End) return fail(FromErrorCode::UnbalancedAngle, lt);
      if (t.kind == Tok::Special && t.special == '<') return fail(FromErrorCode::UnbalancedAngle, t.offset);
      if (first == last && !(t.kind == Tok::Special && t.special == '>')) {
        return fail(FromErrorCode::Syntax, t.offset);
      }
      return fail(FromErrorCode::MissingAt, t.offset);  // "<>", "<user>"
    }
    if (!local_part(first, last, m.local_part)) return false;
    ++pos_;
    if (!domain(m.domain)) return false;
    const Token& n = peek();
    if (n.kind == Tok::Special && n.special == '>') {
      ++pos_;
      return true;
    }
    if (n.kind == Tok::End) return fail(FromErrorCode::UnbalancedAngle, lt);
    if (n.kind == Tok::Special && n.special == '<') return fail(FromErrorCode::UnbalancedAngle, n.offset);
    if (n.kind == Tok::Atom || (n.kind == Tok::Special && n.special == '@')) {
      return fail(FromErrorCode::BadDomain, n.offset);
    }
    return fail(FromErrorCode::Syntax, n.offset);
  }

  // obs_route - RFC 5322 4.4 obs-route = obs-domain-list ":",
  // obs-domain-list = *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]).
  // The route is checked for syntax and discarded: only the addr-spec after
  // it names the mailbox.
  bool obs_route() {
    while (at_special(',')) ++pos_;
    if (!at_special('@')) return fail(FromErrorCode::Syntax, peek().offset);
    while (true) {
      if (at_special('@')) {
        ++pos_;
        if (!route_domain()) return false;
      }
      if (!at_special(',')) break;
      ++pos_;
    }
    if (!at_special(':')) return fail(FromErrorCode::Syntax, peek().offset);
    ++pos_;
    return true;
  }

  // route_domain - RFC 5322 3.4.1 domain (dot-atom / domain-literal /
  // 4.4 obs-domain) of a route, syntax only.
  bool route_domain() {
    if (peek().kind == Tok::DomainLit) {
      ++pos_;
      return true;
    }
    if (peek().kind != Tok::Atom) return fail(FromErrorCode::Syntax, peek().offset);
    ++pos_;
    while (at_special('.')) {
      ++pos_;
      if (peek().kind != Tok::Atom) return fail(FromErrorCode::Syntax, peek().offset);
      ++pos_;
    }
    return true;
  }

  // local_part - RFC 5322 3.4.1 local-part = dot-atom / quoted-string /
  // 4.4 obs-local-part = word *("." word), from tokens [FIRST, LAST).
  // Quoting is removed and the dots rejoined without the CFWS around them.
  bool local_part(std::size_t first, std::size_t last, std::string& out) {
    if (first == last) return fail(FromErrorCode::BadLocalPart, toks_[last].offset);
    bool want_word = true;
    for (std::size_t i = first; i < last; ++i) {
      const Token& t = toks_[i];
      if (want_word != is_word(t)) return fail(FromErrorCode::BadLocalPart, t.offset);
      if (want_word) out += t.text;
      else out.push_back('.');
      want_word = !want_word;
    }
    if (want_word) return fail(FromErrorCode::BadLocalPart, toks_[last - 1].offset);  // trailing "."
    return true;
  }

  // domain - RFC 5322 3.4.1 domain = dot-atom / domain-literal, 4.4
  // obs-domain = atom *("." atom), normalised (lower case, A-labels).
  bool domain(std::string& out) {
    const Token& t = peek();
    // RFC 7489 3.1 / RFC 9989: a domain literal has no DNS name and so no
    // DMARC policy; refuse rather than skip the check.
    if (t.kind == Tok::DomainLit) return fail(FromErrorCode::DomainLiteral, t.offset);
    if (t.kind != Tok::Atom) return fail(FromErrorCode::BadDomain, t.offset);
    const std::size_t start = t.offset;
    std::string raw = t.text;
    ++pos_;
    while (at_special('.')) {
      ++pos_;
      // dot-atom-text: no empty label and no trailing dot.
      if (peek().kind != Tok::Atom) return fail(FromErrorCode::BadDomain, peek().offset);
      raw.push_back('.');
      raw += peek().text;
      ++pos_;
    }
    auto norm = normalize_domain(raw);
    if (!norm) return fail(FromErrorCode::BadDomain, start);
    out = std::move(*norm);
    return true;
  }

  // display_name - RFC 5322 3.4 display-name = phrase; 3.2.5 phrase =
  // 1*word / obs-phrase (4.1: word *(word / "." / CFWS)). Words separated
  // by CFWS get one space; RFC 2047 encoded-words are decoded, and the
  // white space between two of them dropped (RFC 2047 6.2). Encoded-words
  // inside quoted strings are not decoded (RFC 2047 5(3)).
  bool display_name(std::size_t first, std::size_t last, std::string& out) {
    if (first == last) return true;
    if (!is_word(toks_[first])) return fail(FromErrorCode::Syntax, toks_[first].offset);
    bool prev_encoded = false;
    for (std::size_t i = first; i < last; ++i) {
      const Token& t = toks_[i];
      bool encoded = false;
      std::string piece;
      if (t.kind == Tok::Atom) {
        if (auto d = decode_encoded_words(t.text)) {
          piece = std::move(*d);
          encoded = true;
        } else {
          piece = t.text;
        }
      } else if (t.kind == Tok::Quoted) {
        piece = t.text;
      } else {
        piece = ".";
      }
      if (i > first && t.space_before && !(encoded && prev_encoded)) out.push_back(' ');
      out += piece;
      prev_encoded = encoded;
    }
    return true;
  }

  bool append(std::vector<Mailbox>& out, Mailbox m, std::size_t offset) {
    if (out.size() >= kMaxFromAddresses) return fail(FromErrorCode::TooManyAddresses, offset);
    out.push_back(std::move(m));
    return true;
  }

  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  bool saw_group_ = false;
  FromError err_{FromErrorCode::Syntax, 0};
};

}  // namespace

// parse_from_header - parse a From field body.
Expected<FromHeader, FromError> parse_from_header(std::string_view field_body) {
  // Bound the input before any work proportional to it.
  if (field_body.size() > kMaxFromHeaderLength) {
    return Unexpected{FromError{FromErrorCode::TooLong, kMaxFromHeaderLength}};
  }
  // RFC 5322 2.2: a field body is printable US-ASCII (RFC 6532: UTF-8) and
  // WSP; NUL is never allowed and C string APIs would truncate at it.
  if (auto nul = field_body.find('\0'); nul != std::string_view::npos) {
    return Unexpected{FromError{FromErrorCode::NulByte, nul}};
  }
  std::vector<Token> toks;
  if (auto e = Lexer(field_body).run(toks)) return Unexpected{*e};
  return Parser(std::move(toks)).run();
}

namespace {
// is_domain_char - what a reader takes for part of a domain name: letters,
// digits, "-", "_" and UTF-8 (U-labels). "a@evil.example!x" names
// evil.example to a reader, not nothing.
bool is_domain_char(char c) noexcept {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}
}  // namespace

// lenient_from_domains - see the header. A byte scan, independent of the
// grammar, so that no shape of broken field can keep a domain from it.
std::vector<std::string> lenient_from_domains(std::string_view s) {
  std::vector<std::string> out;
  if (s.size() > kMaxFromHeaderLength) s = s.substr(0, kMaxFromHeaderLength);
  auto skip_space = [&](std::size_t i) {
    while (i < s.size() && (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n')) ++i;
    return i;
  };
  for (std::size_t at = s.find('@'); at != std::string_view::npos && out.size() < kMaxFromAddresses;
       at = s.find('@', at + 1)) {
    // obs-domain = atom *("." atom), CFWS allowed around the dots; a
    // quoted-pair's backslash ends it (a\@b is no address).
    std::string raw;
    std::size_t i = skip_space(at + 1);
    while (i < s.size() && is_domain_char(s[i])) {
      std::size_t start = i;
      while (i < s.size() && is_domain_char(s[i])) ++i;
      raw.append(s.substr(start, i - start));
      std::size_t j = skip_space(i);
      if (j >= s.size() || s[j] != '.') break;
      raw.push_back('.');
      i = skip_space(j + 1);
    }
    // A domain cannot end in a dot; "a@example.com." still names example.com.
    while (!raw.empty() && raw.back() == '.') raw.pop_back();
    auto d = normalize_domain(raw);
    if (!d) continue;
    if (std::find(out.begin(), out.end(), *d) == out.end()) out.push_back(std::move(*d));
  }
  return out;
}

}  // namespace dmarc
