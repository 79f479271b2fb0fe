// dkim_verifier.cpp - DkimVerifier on libopendkim (see include/dmarc/adapters/dkim.hpp)
//
// Flow per message: header() -> dkim_header() for each field (LF folding
// made CRLF); end_of_headers() -> dkim_eoh(), which parses the signatures
// and fetches their keys through the DNS bridge; body() -> dkim_body() per
// chunk; finish() -> dkim_eom(), then one result per DKIM-Signature from
// dkim_getsiglist(), classified by classify_signature() together with our
// own strict tag-list parse, our clock check and the key query log.
#include "dmarc/adapters/dkim.hpp"
#include "dmarc/core/domain.hpp"

#include <algorithm>
#include <optional>
#include <cctype>
#include <new>
#include <string>
#include <utility>

#include "adapters/dkim/dkim_body_length.hpp"
#include "adapters/dkim/dkim_dns_bridge.hpp"
#include "adapters/dkim/dkim_handles.hpp"
#include "adapters/dkim/dkim_header_check.hpp"
#include "adapters/dkim/dkim_key_cache.hpp"
#include "adapters/dkim/dkim_result.hpp"
#include "adapters/dkim/dkim_tags.hpp"

namespace dmarc {

namespace {

constexpr std::size_t kMinBPrefix = 8;  // RFC 8601 2.7.1: header.b, 8 or more characters


// append_crlf - append TEXT to OUT with every bare LF made CRLF (Postfix
// hands milters folded header lines with LF; DKIM canonicalizes CRLF).
void append_crlf(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
}

std::string cstr(const unsigned char* p) { return p ? std::string(reinterpret_cast<const char*>(p)) : std::string(); }

std::string trimmed(std::string_view v) { return dkim::strip_fws(v); }



}  // namespace

namespace {

// VerifierState - what all messages of one DkimVerifier share (read-only
// once create() has set it up).
struct VerifierState {
  VerifierState(Resolver& r, DkimOptions o) : options(std::move(o)), bridge(r) {}
  DkimOptions options;
  dkim::DnsBridge bridge;
  dkim::DkimLib lib;

  std::time_t now() const { return options.fixed_time ? *options.fixed_time : std::time(nullptr); }
};

// MessageImpl - one message: one DKIM handle, the signatures as we parsed
// them, and the log of key queries made for it.
class MessageImpl final : public DkimMessage {
 public:
  MessageImpl(const VerifierState& v, std::string_view job_id) : v_(v), job_id_(job_id) {
    DKIM_STAT st = DKIM_STAT_OK;
    dkim_.reset(dkim_verify(v_.lib.get(), reinterpret_cast<const unsigned char*>(job_id_.c_str()), nullptr, &st));
    if (!dkim_) {
      failure_ = std::string("libopendkim: cannot start verification: ") + dkim_getresultstr(st);
      return;
    }
    dkim_set_user_context(dkim_.get(), this);
  }
  ~MessageImpl() override = default;
  MessageImpl(const MessageImpl&) = delete;
  MessageImpl& operator=(const MessageImpl&) = delete;

  unsigned max_signatures() const noexcept { return v_.options.max_signatures; }
  std::size_t omitted() const noexcept override { return omitted_; }

  void header(std::string_view name, std::string_view value) override {
    if (state_ != State::Headers) return;
    try {
      // Each field is built once, in one buffer for the whole message:
      // libopendkim copies what it is given, and check_header_signature()
      // needs the fields h= names when libopendkim hashed a DKIM-Signature
      // of unusual shape wrongly (dkim_header_check.hpp).
      const std::size_t start = fields_text_.size();
      fields_text_.append(name);
      fields_text_ += ':';
      append_crlf(fields_text_, value);
      // Drop a line end after the value, should an MTA leave one.
      while (fields_text_.size() > start && (fields_text_.back() == '\n' || fields_text_.back() == '\r'))
        fields_text_.pop_back();
      fields_.push_back(Span{start, fields_text_.size() - start});
      std::string_view field = std::string_view(fields_text_).substr(start);
      if (ascii_iequals(name, DKIM_SIGNHEADER)) {
        Seen s;
        s.tags = dkim::parse_tag_list(field.substr(name.size() + 1));
        s.field = fields_.size() - 1;
        s.library_misreads = dkim::library_strip_differs(field);
        if (s.tags && s.tags->get("l") && !v_.options.allow_unsigned_trailer) {
          // RFC 6376 8.2: count the canonicalized body to see whether
          // anything follows the signed length (dkim_body_length.hpp).
          const bool relaxed = dkim::canon_of(*s.tags).body_relaxed;
          s.body_counter = relaxed ? 1 : 0;
          if (!counters_[s.body_counter]) counters_[s.body_counter].emplace(relaxed);
        }
        seen_.push_back(std::move(s));
      }
      if (dkim_) (void)dkim_header(dkim_.get(), reinterpret_cast<unsigned char*>(fields_text_.data() + start), field.size());
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      note_failure(e.what());
    }
  }

  void end_of_headers() override {
    if (state_ != State::Headers) return;
    state_ = State::Body;
    if (!dkim_) return;
    dkim::KeyLogScope scope(keys_);
    // Keys are fetched here (libopendkim verifies the header hashes at
    // end of headers); NOSIG: nothing to verify, skip the body.
    DKIM_STAT st = dkim_eoh(dkim_.get());
    verifying_ = st == DKIM_STAT_OK;
    if (st != DKIM_STAT_OK && st != DKIM_STAT_NOSIG) note_lib_failure(st);
  }

  void body(std::string_view chunk) override {
    if (state_ == State::Headers) end_of_headers();
    if (state_ != State::Body || !verifying_ || chunk.empty()) return;
    // dkim_body() only reads the chunk; its prototype lacks the const.
    for (auto& c : counters_)
      if (c) c->add(chunk);
    DKIM_STAT st = dkim_body(dkim_.get(), reinterpret_cast<unsigned char*>(const_cast<char*>(chunk.data())), chunk.size());
    if (st != DKIM_STAT_OK) {
      verifying_ = false;
      note_lib_failure(st);
    }
  }

  std::vector<DkimSignatureResult> finish() override {
    if (state_ == State::Headers) end_of_headers();
    if (state_ == State::Done) return {};
    state_ = State::Done;
    try {
      if (verifying_) {
        dkim::KeyLogScope scope(keys_);
        bool testkey = false;
        DKIM_STAT st = dkim_eom(dkim_.get(), &testkey);
        // NOKEY, BADSIG, KEYFAIL, CANTVRFY, REVOKED are per-signature
        // outcomes, read from each signature below.
        if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL || st == DKIM_STAT_INVALID) note_lib_failure(st);
      }
      return results();
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      note_failure(e.what());
      return results();
    }
  }

 private:
  enum class State { Headers, Body, Done };
  struct Seen {
    Expected<dkim::TagList, std::string> tags = Unexpected<std::string>{"not parsed"};
    std::size_t field = 0;          // index in fields_
    bool library_misreads = false;  // libopendkim would hash this field wrongly
    int body_counter = -1;          // counters_ index (l= checked), or -1
  };
  struct Span {
    std::size_t offset, size;
  };

  std::vector<std::string_view> field_views() const {
    std::vector<std::string_view> out;
    out.reserve(fields_.size());
    for (const Span& f : fields_) out.push_back(std::string_view(fields_text_).substr(f.offset, f.size));
    return out;
  }

  void note_failure(std::string what) {
    if (failure_.empty()) failure_ = std::move(what);
  }
  void note_lib_failure(DKIM_STAT st) {
    const char* e = dkim_ ? dkim_geterror(dkim_.get()) : nullptr;
    note_failure(std::string("libopendkim: ") + dkim_getresultstr(st) + (e && *e ? std::string(": ") + e : ""));
  }

  // clock_error - RFC 6376 3.5 x= (after t=; expired) and t= (in the
  // future), on our clock (fixed_time in tests), allowing clock_drift.
  std::optional<std::string> clock_error(const dkim::TagList& tags) const {
    const auto now = static_cast<long long>(v_.now());
    const long long drift = v_.options.clock_drift.count();
    auto number = [&](const char* tag) -> std::optional<long long> {
      auto v = tags.get(tag);
      auto n = v ? dkim::parse_unsigned(*v) : std::nullopt;
      return n ? std::optional<long long>(static_cast<long long>(*n)) : std::nullopt;
    };
    auto t = number("t");
    auto x = number("x");
    // RFC 6376 3.5 x=: MUST be greater than t= when both are present.
    if (t && x && *x <= *t) return std::string("x= is not later than t=");
    if (x && now >= *x + drift) return std::string("signature expired (x=)");
    if (t && *t > now + drift) return std::string("signature timestamp is in the future (t=)");
    return std::nullopt;
  }

  // match - libopendkim's siglist entry for our I-th signature. With
  // DKIM_LIBFLAGS_BADSIGHANDLES it lists every DKIM-Signature in header
  // order; should the counts ever differ, b= values are matched in order.
  std::vector<DKIM_SIGINFO*> match(DKIM_SIGINFO** list, int n) const {
    std::vector<DKIM_SIGINFO*> out(seen_.size(), nullptr);
    if (list == nullptr || n <= 0) return out;
    if (static_cast<std::size_t>(n) == seen_.size()) {
      for (std::size_t i = 0; i < seen_.size(); ++i) out[i] = list[i];
      return out;
    }
    int cursor = 0;
    for (std::size_t i = 0; i < seen_.size() && cursor < n; ++i) {
      if (!seen_[i].tags) continue;
      auto b = seen_[i].tags->get("b");
      if (!b) continue;
      std::string mine = dkim::strip_fws(*b);
      for (int k = cursor; k < n; ++k) {
        unsigned char* theirs = dkim_sig_gettagvalue(list[k], false, reinterpret_cast<unsigned char*>(const_cast<char*>("b")));
        if (theirs && dkim::strip_fws(reinterpret_cast<const char*>(theirs)) == mine) {
          out[i] = list[k];
          cursor = k + 1;
          break;
        }
      }
    }
    return out;
  }

  // body_hash_state - DKIM_SIGBH_MATCH or _MISMATCH: the body hash
  // libopendkim computed for SIG against bh= (RFC 6376 3.7).
  int body_hash_state(DKIM_SIGINFO* sig, const dkim::TagList& tags) const {
    void* hh = nullptr;
    void* bh = nullptr;
    std::size_t hhlen = 0, bhlen = 0;
    auto want = tags.get("bh");
    if (!want || dkim_sig_gethashes(sig, &hh, &hhlen, &bh, &bhlen) != DKIM_STAT_OK || bh == nullptr)
      return DKIM_SIGBH_UNTESTED;
    const auto* p = static_cast<const unsigned char*>(bh);
    std::string got = dkim::base64_encode(std::vector<unsigned char>(p, p + bhlen));
    return got == dkim::strip_fws(*want) ? DKIM_SIGBH_MATCH : DKIM_SIGBH_MISMATCH;
  }

  std::vector<DkimSignatureResult> results() {
    std::vector<DkimSignatureResult> out;
    if (seen_.empty()) return out;
    DKIM_SIGINFO** list = nullptr;
    int n = 0;
    if (dkim_ && dkim_getsiglist(dkim_.get(), &list, &n) != DKIM_STAT_OK) {
      list = nullptr;
      n = 0;
    }
    std::vector<DKIM_SIGINFO*> sigs = match(list, n);
    // RFC 9990 keeps at most 100 DKIM results per row; so do we, and count
    // the rest (Authentication-Results and the log line say how many).
    const std::size_t shown = std::min(seen_.size(), kMaxDkimResults);
    omitted_ = seen_.size() - shown;
    out.reserve(shown);
    for (std::size_t i = 0; i < shown; ++i) out.push_back(one(seen_[i], sigs[i]));
    return out;
  }

  DkimSignatureResult one(const Seen& seen, DKIM_SIGINFO* sig) {
    DkimSignatureResult r;
    dkim::SignatureFacts f;
    f.max_signatures = v_.options.max_signatures;
    f.min_rsa_bits = v_.options.min_rsa_bits;
    std::string b;
    if (seen.tags) {
      const dkim::TagList& t = *seen.tags;
      if (auto v = t.get("d")) r.domain = trimmed(*v);
      if (auto v = t.get("s")) r.selector = trimmed(*v);
      if (auto v = t.get("i")) r.identity = dkim::qp_decode(*v);
      if (auto v = t.get("a")) r.algorithm = trimmed(*v);
      if (auto v = t.get("b")) b = trimmed(*v);
      r.body_length = t.get("l").has_value();
      f.syntax_error = dkim::signature_value_error(t);
      f.clock_error = clock_error(t);
    } else {
      f.syntax_error = seen.tags.error();
    }

    if (sig != nullptr) {
      f.sig_error = dkim_sig_geterror(sig);
      f.flags = dkim_sig_getflags(sig);
      f.ignored = (f.flags & DKIM_SIGFLAG_IGNORE) != 0;
      f.bh = dkim_sig_getbh(sig);
      dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
      if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK) f.alg = alg;
      unsigned int bits = 0;
      if (dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK) f.key_bits = bits;
      // libopendkim leaves the size of an ed25519 key at 0; RFC 8463 3
      // keys are 32 octets, so a key it could use has 256 bits.
      if (f.key_bits == 0 && f.alg == DKIM_SIGN_ED25519SHA256 &&
          ((f.flags & DKIM_SIGFLAG_PASSED) != 0 || f.sig_error == DKIM_SIGERROR_BADSIG))
        f.key_bits = 256;
      r.key_bits = f.key_bits;
      r.test_key = (f.flags & DKIM_SIGFLAG_TESTKEY) != 0;
      std::string d = cstr(dkim_sig_getdomain(sig));
      std::string s = cstr(dkim_sig_getselector(sig));
      if (r.domain.empty()) r.domain = d;
      if (r.selector.empty()) r.selector = s;
      // The handle that verified must be the signature we parsed: the
      // d= and s= a pass is credited to are ours, so they must agree.
      if (seen.tags && !f.syntax_error && !d.empty() && !s.empty() && (!ascii_iequals(d, r.domain) || !ascii_iequals(s, r.selector)))
        f.syntax_error = "libopendkim read d=/s= as " + d + "/" + s;
      if (!d.empty() && !s.empty())
        if (const dkim::KeyQuery* q = keys_.find(s + "." DKIM_DNSKEYNAME "." + d)) f.key_lookup = q->lookup;
      // libopendkim hashed this DKIM-Signature field wrongly (FWS before
      // "=", dkim_header_check.hpp), so its header verdict is replaced by
      // our own check. It compares the body hash only after a header
      // pass, so that comparison is made here from the hash it computed.
      if (seen.library_misreads && seen.tags && f.bh == DKIM_SIGBH_UNTESTED && f.sig_error == DKIM_SIGERROR_BADSIG)
        f.bh = body_hash_state(sig, *seen.tags);
      if (seen.library_misreads && seen.tags && f.bh == DKIM_SIGBH_MATCH && f.key_lookup &&
          !f.key_lookup->record.empty() &&
          (f.sig_error == DKIM_SIGERROR_BADSIG || (f.flags & DKIM_SIGFLAG_PASSED) != 0)) {
        dkim::HeaderCheck hc = dkim::check_header_signature(field_views(), seen.field, *seen.tags, f.key_lookup->record);
        if (hc == dkim::HeaderCheck::Pass) {
          f.sig_error = DKIM_SIGERROR_OK;
          f.flags |= DKIM_SIGFLAG_PASSED;
          if (f.key_bits == 0 && f.alg == DKIM_SIGN_ED25519SHA256) f.key_bits = 256;
        } else if (hc == dkim::HeaderCheck::Fail) {
          f.sig_error = DKIM_SIGERROR_BADSIG;
          f.flags &= ~static_cast<unsigned>(DKIM_SIGFLAG_PASSED);
        }
      }
      if (seen.body_counter >= 0 && counters_[seen.body_counter] && seen.tags) {
        auto l = seen.tags->get("l") ? dkim::parse_unsigned(dkim::strip_fws(*seen.tags->get("l"))) : std::nullopt;
        if (l && counters_[seen.body_counter]->length() > *l) f.unsigned_trailer = true;
      }
      // RFC 8601 2.7.1 header.b: enough of b= to tell the signatures apart.
      std::size_t want = kMinBPrefix;
      char sub[1024];
      std::size_t sublen = sizeof sub;
      if (dkim_get_sigsubstring(dkim_.get(), sig, sub, &sublen) == DKIM_STAT_OK) want = std::max(want, sublen);
      r.b_prefix = b.substr(0, std::min(want, b.size()));
    } else {
      r.b_prefix = b.substr(0, std::min(kMinBPrefix, b.size()));
    }

    f.in_library = sig != nullptr;
    if (!failure_.empty()) f.library_failure = failure_;
    dkim::Classification c = dkim::classify_signature(f);
    r.result = c.result;
    r.reason = std::move(c.reason);
    r.domain = ascii_lowercase(r.domain);
    return r;
  }

  const VerifierState& v_;
  std::string job_id_;  // libopendkim keeps a pointer to it: declared before dkim_
  dkim::DkimHandle dkim_;
  dkim::KeyLog keys_;
  std::vector<Seen> seen_;
  std::vector<Span> fields_;
  std::string fields_text_;
  std::optional<dkim::CanonBodyLength> counters_[2];  // simple, relaxed body canonicalization
  std::size_t omitted_ = 0;
  State state_ = State::Headers;
  bool verifying_ = false;
  std::string failure_;
};

// prescreen - dkim_set_prescreen callback: check at most max_signatures
// usable signatures (those without a setup error); ignore the rest, which
// bounds the key queries and verifications one message can cause.
DKIM_CBSTAT prescreen(DKIM* dkim, DKIM_SIGINFO** sigs, int nsigs) {
  auto* msg = static_cast<MessageImpl*>(dkim_get_user_context(dkim));
  if (msg == nullptr || sigs == nullptr) return DKIM_CBSTAT_CONTINUE;
  unsigned usable = 0;
  for (int i = 0; i < nsigs; ++i) {
    if (dkim_sig_geterror(sigs[i]) != DKIM_SIGERROR_UNKNOWN) continue;
    if (++usable > msg->max_signatures()) dkim_sig_ignore(sigs[i]);
  }
  return DKIM_CBSTAT_CONTINUE;
}

template <class T>
bool set_option(DKIM_LIB* lib, dkim_opts_t opt, T value) {
  return dkim_options(lib, DKIM_OP_SETOPT, opt, &value, sizeof value) == DKIM_STAT_OK;
}

}  // namespace

struct DkimVerifier::Impl {
  Impl(Resolver& r, DkimOptions o) : state(r, std::move(o)) {}
  VerifierState state;
};

DkimVerifier::DkimVerifier() = default;
DkimVerifier::~DkimVerifier() = default;

Expected<std::unique_ptr<DkimVerifier>, std::string> DkimVerifier::create(Resolver& resolver, DkimOptions options) {
  using Err = Unexpected<std::string>;
  // RFC 8301 3.2: verifiers MUST NOT accept RSA keys under 1024 bits.
  if (options.min_rsa_bits < 1024) return Err{"min_rsa_bits below 1024 contradicts RFC 8301 3.2"};
  if (options.max_signatures == 0) return Err{"max_signatures must be at least 1"};
  if (options.clock_drift.count() < 0) return Err{"clock_drift must not be negative"};

  std::unique_ptr<DkimVerifier> v(new DkimVerifier());
  v->impl_ = std::make_unique<Impl>(resolver, std::move(options));
  VerifierState& impl = v->impl_->state;
  impl.lib.reset(dkim_init(nullptr, nullptr));
  if (!impl.lib) return Err{"libopendkim: dkim_init failed"};
  DKIM_LIB* lib = impl.lib.get();
  if (!dkim_libfeature(lib, DKIM_FEATURE_SHA256) || !dkim_libfeature(lib, DKIM_FEATURE_ED25519))
    return Err{"libopendkim lacks rsa-sha256 or ed25519-sha256 (RFC 8463)"};

  // Every DKIM-Signature gets a handle, also those libopendkim finds
  // malformed, so each is reported (as permerror) instead of vanishing.
  if (!set_option<unsigned int>(lib, DKIM_OPTS_FLAGS, DKIM_LIBFLAGS_BADSIGHANDLES))
    return Err{"libopendkim: cannot set flags"};
  if (!set_option<unsigned int>(lib, DKIM_OPTS_MINKEYBITS, impl.options.min_rsa_bits))
    return Err{"libopendkim: cannot set the minimum key size"};
  // libopendkim judges x= and t= against time() with this drift; with a
  // fixed clock the drift is widened by how far the real clock is ahead,
  // which makes its x= check exact for the fixed clock; its t= check is
  // then too lenient, and our own (clock_error) decides.
  std::uint64_t drift = static_cast<std::uint64_t>(impl.options.clock_drift.count());
  if (impl.options.fixed_time) {
    std::uint64_t fixed = static_cast<std::uint64_t>(*impl.options.fixed_time);
    if (!set_option<std::uint64_t>(lib, DKIM_OPTS_FIXEDTIME, fixed)) return Err{"libopendkim: cannot fix the time"};
    auto real = static_cast<std::uint64_t>(std::time(nullptr));
    if (real > fixed) drift += real - fixed;
  }
  if (!set_option<std::uint64_t>(lib, DKIM_OPTS_CLOCKDRIFT, drift)) return Err{"libopendkim: cannot set the clock drift"};
  if (dkim_set_prescreen(lib, prescreen) != DKIM_STAT_OK) return Err{"libopendkim: cannot set the prescreen callback"};
  dkim::install_dns_bridge(lib, &impl.bridge);
  return v;
}

bool DkimVerifier::key_cache_active() { return dkim::key_cache_stats().active; }

DkimVerifier::KeyCacheCounters DkimVerifier::key_cache_counters() {
  dkim::KeyCacheStats s = dkim::key_cache_stats();
  return KeyCacheCounters{s.hits, s.misses, s.passed, s.entries};
}

std::unique_ptr<DkimMessage> DkimVerifier::begin(std::string_view job_id) {
  return std::make_unique<MessageImpl>(impl_->state, job_id.empty() ? std::string_view("-") : job_id);
}

}  // namespace dmarc
