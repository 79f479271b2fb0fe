// milter.cpp - libmilter callbacks
#include "milter.hpp"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <exception>
#include <mutex>

#include <spdlog/spdlog.h>

#include "session.hpp"

namespace dmarc::milter {

namespace {
std::mutex g_engine_mutex;
std::shared_ptr<const Engine> g_engine;
std::atomic<int> g_open_messages{0};
std::atomic<bool> g_draining{false};
// Whether the MTA offered SMFIP_SKIP (body callbacks may answer SKIP) and
// SMFIP_HDR_LEADSPC (header values keep the space after the colon).
std::atomic<bool> g_can_skip{false};
std::atomic<bool> g_leadspc{false};

struct Conn {
  explicit Conn(std::shared_ptr<const Engine> e) : session(std::move(e)) {}
  Session session;
  bool in_message = false;
};

Conn* conn_of(SMFICTX* ctx) { return static_cast<Conn*>(smfi_getpriv(ctx)); }

void end_message(Conn* c) {
  if (c && c->in_message) {
    c->in_message = false;
    g_open_messages.fetch_sub(1);
  }
}

sfsistat internal_error(SMFICTX* ctx, const char* where, const char* what) {
  auto e = current_engine();
  FallbackAction a = e ? e->config.internal_error_action : FallbackAction::TempFail;
  spdlog::error("internal error in {}: {}; answering {}", where, what, to_token(a));
  if (a == FallbackAction::Accept) return SMFIS_ACCEPT;
  smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.0"),
                const_cast<char*>("Temporary failure in the DMARC filter; try again later"));
  return SMFIS_TEMPFAIL;
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

sfsistat on_negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long, unsigned long* pf0,
                      unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
  unsigned long want = SMFIP_NORCPT | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC | SMFIP_SKIP;
  *pf1 = f1 & want;
  *pf2 = 0;
  *pf3 = 0;
  g_can_skip = (f1 & SMFIP_SKIP) != 0;
  g_leadspc = (f1 & SMFIP_HDR_LEADSPC) != 0;
  return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  return guarded(ctx, "connect", [&] {
    auto engine = current_engine();
    auto* c = new Conn(engine);
    smfi_setpriv(ctx, c);
    c->session.connect(hostname ? hostname : "", address_text(addr));
    return SMFIS_CONTINUE;
  });
}

sfsistat on_helo(SMFICTX* ctx, char* name) {
  return guarded(ctx, "helo", [&] {
    if (auto* c = conn_of(ctx)) c->session.helo(name ? name : "");
    return SMFIS_CONTINUE;
  });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  return guarded(ctx, "envfrom", [&] {
    Conn* c = conn_of(ctx);
    if (!c) return SMFIS_CONTINUE;
    // The address as the MTA parsed it ({mail_addr}: Postfix and Sendmail
    // send it by default), not the raw argument: "MAIL FROM:<a@ b.example>"
    // is the sender a@b.example to Postfix, and so it must be to SPF.
    const char* parsed = smfi_getsymval(ctx, const_cast<char*>("{mail_addr}"));
    std::string addr = parsed ? parsed : (argv && argv[0] ? argv[0] : "");
    if (addr.size() >= 2 && addr.front() == '<' && addr.back() == '>') addr = addr.substr(1, addr.size() - 2);
    end_message(c);
    if (g_draining) {
      // Stopping: finish what is open, take nothing new (the MTA retries).
      smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.2"),
                    const_cast<char*>("DMARC filter restarting; try again later"));
      return SMFIS_TEMPFAIL;
    }
    c->in_message = true;
    g_open_messages.fetch_add(1);
    c->session.set_engine(current_engine());
    c->session.envfrom(addr, symval(ctx, "{auth_authen}"), symval(ctx, "i"));
    return SMFIS_CONTINUE;
  });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  return guarded(ctx, "header", [&] {
    if (auto* c = conn_of(ctx)) {
      std::string_view raw = value ? value : "";
      // Without SMFIP_HDR_LEADSPC the MTA drops the space after the colon;
      // put the usual one back so simple canonicalization (RFC 6376 3.4.1)
      // sees the field as sent in the common case.
      std::string v;
      if (!g_leadspc && !raw.empty()) v += ' ';
      v += raw;
      c->session.header(name ? name : "", v);
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat on_eoh(SMFICTX* ctx) {
  return guarded(ctx, "eoh", [&] {
    if (auto* c = conn_of(ctx)) c->session.eoh();
    return SMFIS_CONTINUE;
  });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) {
  return guarded(ctx, "body", [&] {
    Conn* c = conn_of(ctx);
    if (!c) return SMFIS_CONTINUE;
    if (!c->session.wants_body()) return g_can_skip ? SMFIS_SKIP : SMFIS_CONTINUE;
    c->session.body(std::string_view(reinterpret_cast<const char*>(data), len));
    return SMFIS_CONTINUE;
  });
}

sfsistat on_eom(SMFICTX* ctx) {
  return guarded(ctx, "eom", [&] {
    Conn* c = conn_of(ctx);
    if (!c) return SMFIS_CONTINUE;
    Outcome o = c->session.eom(symval(ctx, "i"));
    end_message(c);
    spdlog::info("{}", o.log_line);
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
    nullptr,  // envrcpt
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

int open_messages() { return g_open_messages.load(); }

void set_draining(bool on) { g_draining = on; }

bool register_milter() {
  if (smfi_register(g_desc) != MI_SUCCESS) {
    spdlog::error("smfi_register failed");
    return false;
  }
  return true;
}

}  // namespace dmarc::milter
