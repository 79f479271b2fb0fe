// milter.cpp - libmilter callbacks
#include "milter.hpp"
#include "metrics.hpp"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "dmarc/build_config.hpp"
#include "dmarc/core/failure_report.hpp"
#include "session.hpp"

namespace dmarc::milter {

namespace {
std::mutex g_engine_mutex;
std::shared_ptr<const Engine> g_engine;
std::shared_ptr<Recorder> g_recorder;

// The failure jobs' gate, for the limits of the running configuration.
std::mutex g_gate_mutex;
std::shared_ptr<FailureJobGate> g_gate;
std::string g_gate_key;
std::shared_ptr<FailureJobGate> failure_gate(const Config& c) {
  std::string key = std::to_string(c.failure_report_rate_domain) + "/" + std::to_string(c.failure_report_rate_total) +
                    "/" + std::to_string(c.forensic_max_per_day);
  std::lock_guard<std::mutex> lock(g_gate_mutex);
  if (!g_gate || key != g_gate_key) {
    g_gate = std::make_shared<FailureJobGate>(c.failure_report_rate_domain, c.failure_report_rate_total,
                                              c.forensic_max_per_day);
    g_gate_key = key;
  }
  return g_gate;
}

// record - the message's aggregate records to the recorder (it only
// queues them; the writer thread does the I/O).
void record(const Engine& engine, const Outcome& o) {
  auto rec = current_recorder();
  if (!rec || !o.checked) return;
  if (!should_record(engine.config.ignore_mail_to, engine.report_sender, o.facts)) return;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  rec->submit(aggregate_records(o.facts, o, now.count()));
  static const std::string agent = std::string("dmarc-milter/") + build::kVersion;
  if (engine.config.failure_reports) {
    // The original is put together only for a message that gets a report
    // (most get none): no copy of a 1 MiB body for passing mail.
    const bool whole = engine.config.failure_report_whole_message;
    auto jobs = failure_jobs(o.facts, o, "", engine.config.failure_reports_on_none, agent, now.count());
    if (!jobs.empty()) jobs = failure_gate(engine.config)->admit(std::move(jobs), now.count(), nullptr);
    if (!jobs.empty()) {
      std::string original = whole ? o.header_section + "\n" + o.body_section : o.header_section;
      for (auto& j : jobs) {
        j.original = original;
        j.whole_message = whole;
      }
      rec->submit_failures(std::move(jobs));
    }
  }
  if (engine.config.keeps_forensics()) {
    auto jobs = local_forensic_jobs(o.facts, o, engine.config.own_domains, "", agent, now.count());
    if (!jobs.empty()) jobs = failure_gate(engine.config)->admit(std::move(jobs), now.count(), nullptr);
    for (auto& j : jobs) j.original = o.header_section;
    if (!jobs.empty()) rec->submit_failures(std::move(jobs));
  }
}
std::atomic<int> g_open_messages{0};
std::atomic<bool> g_draining{false};
std::atomic<void (*)()> g_first_connection_check{nullptr};

// The steps we ask the MTA not to wait for a reply to (protocol 6,
// SMFIP_NR_*): connect, HELO, MAIL FROM, each RCPT TO, each header field,
// end of header and each body chunk. They only feed the session, so their replies are pure
// round trips: a message with 15 header fields had 19 of them, each a
// wake-up on both sides (bench/README.md). Only end of message is answered;
// what MAIL FROM would have refused (a failed connection, a milter that is
// stopping) is answered there. libmilter answers CONTINUE itself when the
// MTA lacks the feature. The body is read to the end even when unsigned mail
// cannot use it (no SKIP): a round trip costs more than reading a chunk.
constexpr unsigned long kNoReplySteps =
    SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

struct Conn {
  explicit Conn(std::shared_ptr<const Engine> e) : session(std::move(e)) {}
  Session session;
  bool in_message = false;
  // The protocol flags agreed for this connection (SMFIP_*): which steps
  // get no reply, whether SKIP may be answered, whether header values keep
  // their leading space.
  unsigned long proto = 0;
  // A failure in a step without a reply (logged when it happened), answered
  // with InternalErrorAction at the next step that has one: connect/HELO
  // for every message of the connection, MAIL FROM to body for the current
  // message.
  bool conn_failed = false;
  bool msg_failed = false;
  // MAIL FROM came while stopping: the message is refused (tempfail) at the
  // next step that replies.
  bool refused = false;
};

Conn* conn_of(SMFICTX* ctx) { return static_cast<Conn*>(smfi_getpriv(ctx)); }

void end_message(Conn* c) {
  if (c && c->in_message) {
    c->in_message = false;
    g_open_messages.fetch_sub(1);
  }
}

FallbackAction internal_error_action() {
  auto e = current_engine();
  return e ? e->config.internal_error_action : FallbackAction::TempFail;
}

// fallback - the InternalErrorAction as a reply.
sfsistat fallback(SMFICTX* ctx) {
  if (internal_error_action() == FallbackAction::Accept) return SMFIS_ACCEPT;
  smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.0"),
                const_cast<char*>("Temporary failure in the DMARC filter; try again later"));
  return SMFIS_TEMPFAIL;
}

sfsistat internal_error(SMFICTX* ctx, const char* where, const char* what) {
  metrics().internal_errors.fetch_add(1, std::memory_order_relaxed);
  // At end of message the reply ends the message: count it as such.
  if (std::strcmp(where, "eom") == 0) metrics().count_reply_only(internal_error_action() == FallbackAction::Accept);
  spdlog::error("internal error in {}: {}; answering {}", where, what, to_token(internal_error_action()));
  return fallback(ctx);
}

// guarded - run F; any exception becomes the InternalErrorAction.
template <class F>
sfsistat guarded(SMFICTX* ctx, const char* where, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    try {
      return internal_error(ctx, where, e.what());
    } catch (...) {
      return SMFIS_TEMPFAIL;
    }
  } catch (...) {
    try {
      return internal_error(ctx, where, "unknown exception");
    } catch (...) {
      return SMFIS_TEMPFAIL;
    }
  }
}

// quiet - a step that feeds the session and continues. When the MTA was
// told not to wait for its reply (SMFIP_NR_*), it must answer NOREPLY
// whatever happens: a failure is logged here and marked in the connection
// (conn_failed or msg_failed), to be answered at the next step that replies.
template <class F>
sfsistat quiet(SMFICTX* ctx, const char* where, unsigned long nr_bit, bool Conn::*failed, F&& f) noexcept {
  Conn* c = conn_of(ctx);
  if (!c || !(c->proto & nr_bit)) return guarded(ctx, where, [&] {
      f(c);
      return SMFIS_CONTINUE;
    });
  // Marked first: logging may fail too (no memory), the answer must not.
  auto mark = [&](const char* what) noexcept {
    c->*failed = true;
    metrics().internal_errors.fetch_add(1, std::memory_order_relaxed);
    try {
      spdlog::error("internal error in {}: {}; answered at end of message ({})", where, what,
                    to_token(internal_error_action()));
    } catch (...) {
    }
  };
  try {
    f(c);
  } catch (const std::exception& e) {
    mark(e.what());
  } catch (...) {
    mark("unknown exception");
  }
  return SMFIS_NOREPLY;
}

// pending_failure - the answer owed for what quiet() marked (already logged)
// or for a message begun while stopping; nothing when there is none.
std::optional<sfsistat> pending_failure(SMFICTX* ctx, Conn* c) {
  if (!c) return std::nullopt;
  // Either answer ends the message unchecked: counted as one (metrics).
  if (c->refused) {
    metrics().count_reply_only(false);
    smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.2"),
                  const_cast<char*>("DMARC filter restarting; try again later"));
    return SMFIS_TEMPFAIL;
  }
  if (c->conn_failed || c->msg_failed) {
    metrics().count_reply_only(internal_error_action() == FallbackAction::Accept);
    return fallback(ctx);
  }
  return std::nullopt;
}

std::string address_text(const _SOCK_ADDR* sa) {
  if (!sa) return {};
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string symval(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v ? v : "";
}

// libmilter reads '%' in reply text as a format character: double it.
std::string reply_text(const std::string& t) {
  std::string out;
  for (char c : t) {
    out += c;
    if (c == '%') out += '%';
  }
  return out;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
  *pf2 = 0;
  *pf3 = 0;
  // Steps we never use; all of these are safe without a connection state.
  // RCPT TO is used: the recipients' domains go into the report records.
  *pf1 = f1 & (SMFIP_NOUNKNOWN | SMFIP_NODATA);
  if (auto check = g_first_connection_check.exchange(nullptr)) check();
  // The connection state is made here, so that the flags it depends on
  // (no reply, SKIP, leading space) are agreed only when it exists.
  Conn* c = nullptr;
  try {
    c = new Conn(current_engine());
  } catch (...) {
    spdlog::error("internal error in negotiate: no memory for a connection");
    return SMFIS_CONTINUE;
  }
  c->proto = f1 & (SMFIP_SKIP | SMFIP_HDR_LEADSPC | kNoReplySteps);
  *pf1 |= c->proto;
  smfi_setpriv(ctx, c);
  return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  return quiet(ctx, "connect", SMFIP_NR_CONN, &Conn::conn_failed, [&](Conn* c) {
    if (!c) {
      // No negotiation callback (an old MTA) or no memory then: plain replies.
      c = new Conn(current_engine());
      smfi_setpriv(ctx, c);
    }
    c->session.connect(hostname ? hostname : "", address_text(addr));
  });
}

sfsistat on_helo(SMFICTX* ctx, char* name) {
  return quiet(ctx, "helo", SMFIP_NR_HELO, &Conn::conn_failed, [&](Conn* c) {
    if (c) c->session.helo(name ? name : "");
  });
}

// envelope_address - the MAIL FROM or RCPT TO address of ARGV[0], as the
// MTA parsed it (MACRO, {mail_addr} or {rcpt_addr}) rather than raw:
// "MAIL FROM:<a@ b.example>" is the sender a@b.example to Postfix, and so it
// must be to SPF. But Sendmail's macro is the user part of the address's
// mailer triple: for a domain of its own (class w) that is the local part
// alone, "alice" for <alice@example.com>, and "" for <>. A parsed value
// without a domain is taken only when the argument has none either (the
// null path, a bare local name); otherwise the argument, without its <>.
std::string envelope_address(SMFICTX* ctx, const char* macro, char** argv) {
  auto unbracket = [](std::string a) {
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    return a;
  };
  std::string arg = unbracket(argv && argv[0] ? argv[0] : "");
  const char* parsed = smfi_getsymval(ctx, const_cast<char*>(macro));
  if (!parsed) return arg;
  std::string p = unbracket(parsed);
  if (p.empty() || p.find('@') != std::string::npos || arg.find('@') == std::string::npos) return p;
  return arg;
}

// start_message - MAIL FROM: a new message on the connection, unless the
// connection failed earlier or the milter is stopping (then the message is
// not counted as open, and pending_failure() answers for it).
void start_message(SMFICTX* ctx, Conn* c, char** argv) {
  end_message(c);
  c->msg_failed = false;
  c->refused = false;
  if (c->conn_failed) return;
  if (g_draining) {
    // Stopping: finish what is open, take nothing new (the MTA retries).
    c->refused = true;
    return;
  }
  // {mail_addr}: Postfix and Sendmail send it by default (see envelope_address).
  const std::string addr = envelope_address(ctx, "{mail_addr}", argv);
  c->in_message = true;
  g_open_messages.fetch_add(1);
  c->session.set_engine(current_engine());
  c->session.envfrom(addr, symval(ctx, "{auth_authen}"), symval(ctx, "i"));
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  if (Conn* c = conn_of(ctx); c && (c->proto & SMFIP_NR_MAIL))
    return quiet(ctx, "envfrom", SMFIP_NR_MAIL, &Conn::msg_failed, [&](Conn* cc) { start_message(ctx, cc, argv); });
  return guarded(ctx, "envfrom", [&] {
    Conn* c = conn_of(ctx);
    if (!c) return SMFIS_CONTINUE;
    start_message(ctx, c, argv);
    if (auto f = pending_failure(ctx, c)) return *f;
    return SMFIS_CONTINUE;
  });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
  return quiet(ctx, "envrcpt", SMFIP_NR_RCPT, &Conn::msg_failed, [&](Conn* c) {
    if (!c || !c->in_message || c->msg_failed) return;
    c->session.rcpt(envelope_address(ctx, "{rcpt_addr}", argv));
  });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  return quiet(ctx, "header", SMFIP_NR_HDR, &Conn::msg_failed, [&](Conn* c) {
    if (!c || !c->in_message || c->msg_failed) return;
    std::string_view raw = value ? value : "";
    // Without SMFIP_HDR_LEADSPC the MTA drops the space after the colon;
    // put the usual one back so simple canonicalization (RFC 6376 3.4.1)
    // sees the field as sent in the common case.
    if (!(c->proto & SMFIP_HDR_LEADSPC) && !raw.empty()) {
      std::string v;
      v.reserve(raw.size() + 1);
      v += ' ';
      v += raw;
      c->session.header(name ? name : "", v);
    } else {
      c->session.header(name ? name : "", raw);
    }
  });
}

sfsistat on_eoh(SMFICTX* ctx) {
  return quiet(ctx, "eoh", SMFIP_NR_EOH, &Conn::msg_failed, [&](Conn* c) {
    if (c && c->in_message && !c->msg_failed) c->session.eoh();
  });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) {
  if (Conn* c = conn_of(ctx); c && (c->proto & SMFIP_NR_BODY)) {
    return quiet(ctx, "body", SMFIP_NR_BODY, &Conn::msg_failed, [&](Conn* cc) {
      if (cc->in_message && !cc->msg_failed && cc->session.wants_body())
        cc->session.body(std::string_view(reinterpret_cast<const char*>(data), len));
    });
  }
  return guarded(ctx, "body", [&] {
    Conn* c = conn_of(ctx);
    if (!c) return SMFIS_CONTINUE;
    if (auto f = pending_failure(ctx, c)) {
      end_message(c);
      return *f;
    }
    if (!c->session.wants_body()) return (c->proto & SMFIP_SKIP) ? SMFIS_SKIP : SMFIS_CONTINUE;
    c->session.body(std::string_view(reinterpret_cast<const char*>(data), len));
    return SMFIS_CONTINUE;
  });
}

sfsistat on_eom(SMFICTX* ctx) {
  return guarded(ctx, "eom", [&] {
    Conn* c = conn_of(ctx);
    if (!c) return SMFIS_CONTINUE;
    if (auto f = pending_failure(ctx, c)) {
      end_message(c);
      c->session.abort();
      return *f;
    }
    // The message ends here whatever eom() does (an exception included),
    // so a SIGTERM drain never waits for it.
    struct End {
      Conn* c;
      ~End() { end_message(c); }
    } end{c};
    Outcome o = c->session.eom(symval(ctx, "i"));
    spdlog::info("{}", o.log_line);
    record(c->session.engine(), o);
    const MessageDecision& d = o.decision;
    if (d.action == Action::Reject || d.action == Action::TempFail) {
      std::string text = reply_text(d.text);
      smfi_setreply(ctx, const_cast<char*>(d.rcode.c_str()), const_cast<char*>(d.xcode.c_str()),
                    const_cast<char*>(text.c_str()));
      return d.action == Action::Reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
    }
    // Forged Authentication-Results first, highest index first, then ours
    // on top (RFC 8601 5: it must come before the fields it describes).
    for (const auto& del : o.deletions) {
      if (smfi_chgheader(ctx, const_cast<char*>(del.name.c_str()), del.index, nullptr) != MI_SUCCESS)
        spdlog::warn("could not remove {} #{}", del.name, del.index);
      else
        metrics().forged_ar_removed.fetch_add(1, std::memory_order_relaxed);
    }
    if (o.ar_value) {
      if (smfi_insheader(ctx, 0, const_cast<char*>("Authentication-Results"), const_cast<char*>(o.ar_value->c_str())) !=
          MI_SUCCESS)
        spdlog::warn("could not add Authentication-Results");
    }
    if (o.quarantine_header) {
      smfi_addheader(ctx, const_cast<char*>(o.quarantine_header->first.c_str()),
                     const_cast<char*>(o.quarantine_header->second.c_str()));
    }
    if (d.hold) {
      std::string why = "DMARC quarantine";
      if (d.decisive >= 0) why += " (" + o.verdicts[static_cast<std::size_t>(d.decisive)].author_domain + ")";
      if (smfi_quarantine(ctx, const_cast<char*>(why.c_str())) != MI_SUCCESS) spdlog::warn("could not hold the message");
    }
    return SMFIS_ACCEPT;
  });
}

sfsistat on_abort(SMFICTX* ctx) {
  return guarded(ctx, "abort", [&] {
    if (auto* c = conn_of(ctx)) {
      c->session.abort();
      c->msg_failed = false;
      end_message(c);
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat on_close(SMFICTX* ctx) {
  return guarded(ctx, "close", [&] {
    if (auto* c = conn_of(ctx)) {
      end_message(c);
      smfi_setpriv(ctx, nullptr);
      delete c;
    }
    return SMFIS_CONTINUE;
  });
}

struct smfiDesc g_desc = {
    const_cast<char*>("dmarc-milter"),
    SMFI_VERSION,
    SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
    on_connect,
    on_helo,
    on_envfrom,
    on_envrcpt,
    on_header,
    on_eoh,
    on_body,
    on_eom,
    on_abort,
    on_close,
    nullptr,  // unknown
    nullptr,  // data
    on_negotiate,
};
}  // namespace

void set_current_engine(std::shared_ptr<const Engine> engine) {
  std::lock_guard<std::mutex> lock(g_engine_mutex);
  g_engine = std::move(engine);
}

std::shared_ptr<const Engine> current_engine() {
  std::lock_guard<std::mutex> lock(g_engine_mutex);
  return g_engine;
}

void set_recorder(std::shared_ptr<Recorder> recorder) {
  std::lock_guard<std::mutex> lock(g_engine_mutex);
  g_recorder = std::move(recorder);
}

std::shared_ptr<Recorder> current_recorder() {
  std::lock_guard<std::mutex> lock(g_engine_mutex);
  return g_recorder;
}

int open_messages() { return g_open_messages.load(); }

void set_draining(bool on) { g_draining = on; }

void set_first_connection_check(void (*fn)()) { g_first_connection_check = fn; }

bool register_milter() {
  if (smfi_register(g_desc) != MI_SUCCESS) {
    spdlog::error("smfi_register failed");
    return false;
  }
  return true;
}

}  // namespace dmarc::milter
