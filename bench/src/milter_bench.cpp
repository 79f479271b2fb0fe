// milter_bench.cpp - replay a mail corpus through a milter, or a chain of milters, as Postfix would
//
// USAGE
//   milter-bench -m SOCKET [-m SOCKET2] -c N [-n MSGS] [-d SECONDS] [-w MSGS]
//                [-p NAME=PID]... [--rss-every SECONDS] [--label TEXT] CORPUS_DIR
//
// DESCRIPTION
//   N worker threads each play SMTP sessions of the corpus (corpus.hpp),
//   round robin, one milter connection per milter per session, as Postfix's
//   smtpd does: option negotiation (protocol 6), connect, helo, then per
//   message mail, rcpt, data, the header fields, end of header, the body in
//   chunks of at most 65535 octets and end of body, every reply read; after
//   each message SMFIC_ABORT and the next message on the same connection;
//   SMFIC_QUIT at the end of the session.
//
//   With two -m, the milters form a chain like Postfix's smtpd_milters:
//   envelope events go to each milter in turn; the content goes to the
//   first milter, its header changes (insert, add, change, delete) are
//   applied, and the changed header goes to the second. A reject or
//   tempfail ends the message there.
//
//   First -w messages warm up (DNS caches, thread pools) and are not
//   measured. Then -n messages, or -d seconds, are measured: messages per
//   second, latency from MAIL FROM to the last end-of-body reply (p50, p90,
//   p99, max), and for each -p process the CPU time it used (utime + stime
//   of all its threads, /proc/PID/stat) divided by the messages measured.
//   --rss-every samples each -p process's VmRSS and fits its slope.
//
//   A last line "RESULT key=value ..." is meant for scripts (bench/run.sh).
//
// EXIT STATUS
//   0 when every message got a verdict; 1 on errors (connection or
//   protocol); 2 on bad usage.
#include <getopt.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "corpus.hpp"
#include "milter_client.hpp"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string corpus;
  std::vector<Endpoint> milters;
  int concurrency = 1;
  long messages = 0;
  double duration = 0;
  long warmup = 0;
  std::vector<std::pair<std::string, int>> pids;
  double rss_every = 0;
  std::string rss_log;
  std::string label;
  bool quickack = false;
  int show = 0;
  long max_errors = 20;
};

// ---------------------------------------------------------------- /proc

struct CpuTicks {
  unsigned long long utime = 0, stime = 0;
  bool ok = false;
};

// read_cpu - utime and stime of PID (all threads, also those gone).
CpuTicks read_cpu(int pid) {
  CpuTicks t;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return t;
  std::size_t rp = line.rfind(')');
  if (rp == std::string::npos) return t;
  std::istringstream rest(line.substr(rp + 2));
  std::string field;
  // Fields after the command name start at 3 (state); utime is 14, stime 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) t.utime = std::stoull(field);
    if (i == 15) {
      t.stime = std::stoull(field);
      t.ok = true;
    }
  }
  return t;
}

// read_host_busy - busy and total jiffies of the whole machine (/proc/stat).
std::pair<unsigned long long, unsigned long long> read_host_busy() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long v[10] = {}, total = 0;
  in >> cpu;
  for (auto& x : v) {
    if (!(in >> x)) break;
  }
  for (int i = 0; i < 8; ++i) total += v[i];  // guest time is already in user
  unsigned long long idle = v[3] + v[4];      // idle + iowait
  return {total - idle, total};
}

// read_rss_kb - VmRSS of PID in KiB, or -1.
long read_rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// ---------------------------------------------------------------- stats

struct MilterTally {
  std::map<std::string, long> eob_verdicts;  // final reply at end of body
  std::map<char, long> mods;                 // modification packets by type
  std::map<std::string, long> tokens;        // spf=pass, dkim=fail, dmarc=pass ... from A-R
  long agree = 0, disagree = 0, unknown = 0;
  std::vector<std::string> disagreements;  // a few examples

  void merge(const MilterTally& o) {
    for (auto& [k, v] : o.eob_verdicts) eob_verdicts[k] += v;
    for (auto& [k, v] : o.mods) mods[k] += v;
    for (auto& [k, v] : o.tokens) tokens[k] += v;
    agree += o.agree;
    disagree += o.disagree;
    unknown += o.unknown;
    for (auto& d : o.disagreements)
      if (disagreements.size() < 8) disagreements.push_back(d);
  }
};

struct Stats {
  std::vector<std::uint32_t> latency_us;
  std::vector<std::uint32_t> setup_us;
  long messages = 0, sessions = 0, errors = 0;
  std::map<std::string, long> outcomes;
  std::vector<MilterTally> milters;
  std::vector<std::string> error_texts;

  void clear(std::size_t n_milters) {
    latency_us.clear();
    setup_us.clear();
    messages = sessions = errors = 0;
    outcomes.clear();
    milters.assign(n_milters, {});
    error_texts.clear();
  }
};

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// ar_tokens - the method=result pairs of an Authentication-Results value
// for spf, dkim and dmarc (not "policy.dmarc=..." and the like).
std::vector<std::pair<std::string, std::string>> ar_tokens(std::string_view v) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view method : {"spf", "dkim", "dmarc"}) {
    std::size_t pos = 0;
    while ((pos = v.find(method, pos)) != std::string_view::npos) {
      std::size_t after = pos + method.size();
      bool starts = pos == 0 || v[pos - 1] == ' ' || v[pos - 1] == '\t' || v[pos - 1] == '\n' || v[pos - 1] == ';';
      if (starts && after < v.size() && v[after] == '=') {
        std::size_t end = after + 1;
        while (end < v.size() && std::isalpha(static_cast<unsigned char>(v[end]))) ++end;
        out.emplace_back(std::string(method), std::string(v.substr(after + 1, end - after - 1)));
      }
      pos = after;
    }
  }
  return out;
}

// ---------------------------------------------------------------- work

struct Shared {
  Shared(const Options& o, const Corpus& c) : opt(o), corpus(c) {}
  const Options& opt;
  const Corpus& corpus;
  std::atomic<std::uint64_t> next_session{0};
  std::atomic<long> started{0};  // messages started in this phase
  std::atomic<long> done{0};     // messages finished in this phase
  std::atomic<std::uint64_t> qid{0};
  std::atomic<long> errors{0};  // over the whole run: too many ends it
  long limit = 0;  // messages in this phase (0 = no limit)
  Clock::time_point deadline{};
  bool timed = false;
  std::mutex show_mutex;
  std::atomic<int> shown{0};
};

class Worker {
 public:
  Worker(Shared& sh, int id) : sh_(sh), id_(id) {
    ClientOptions co;
    co.quickack = sh.opt.quickack;
    for (const auto& ep : sh.opt.milters) conns_.push_back(std::make_unique<MilterClient>(ep, co));
    stats.clear(conns_.size());
  }

  // run_phase - play sessions until the phase's message count or deadline.
  void run_phase() {
    for (;;) {
      if (sh_.timed && Clock::now() >= sh_.deadline) return;
      if (sh_.errors.load() > sh_.opt.max_errors) return;
      const Session& s = sh_.corpus.sessions[sh_.next_session.fetch_add(1) % sh_.corpus.sessions.size()];
      long before = sh_.started.fetch_add(static_cast<long>(s.messages.size()));
      if (sh_.limit > 0 && before >= sh_.limit) return;
      try {
        run_session(s);
      } catch (const std::exception& e) {
        ++stats.errors;
        sh_.errors.fetch_add(1);
        if (stats.error_texts.size() < 5) stats.error_texts.push_back(e.what());
        for (auto& c : conns_) {
          try {
            c->close();
          } catch (...) {
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  Stats stats;

 private:
  void run_session(const Session& s) {
    const auto t0 = Clock::now();
    const std::size_t n = conns_.size();
    std::vector<bool> active(n, true);
    for (auto& c : conns_) c->open();
    Macros cm = {{"j", "mx.bench.example"},
                 {"{daemon_name}", "smtpd"},
                 {"v", "Postfix 3.7.11"},
                 {"_", s.client_name + " [" + s.client_ip + "]"},
                 {"{client_addr}", s.client_ip},
                 {"{client_name}", s.client_name}};
    const std::uint16_t port = static_cast<std::uint16_t>(1024 + (id_ * 7919 + stats.sessions) % 60000);
    for (std::size_t i = 0; i < n; ++i) {
      Reply r = conns_[i]->connect(cm, s.client_name, s.client_ip, port);
      if (!session_continues(r, active, i)) return end_session(s, "connect_" + std::string(to_text(r.verdict)));
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!active[i]) continue;
      Reply r = conns_[i]->helo({}, s.helo);
      if (!session_continues(r, active, i)) return end_session(s, "helo_" + std::string(to_text(r.verdict)));
    }
    stats.setup_us.push_back(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
    for (std::size_t mi : s.messages) {
      run_message(sh_.corpus.messages[mi], active);
      ++stats.messages;
      sh_.done.fetch_add(1, std::memory_order_relaxed);
    }
    for (auto& c : conns_) c->close();
    ++stats.sessions;
  }

  // session_continues - act on a reply to connect or helo.
  bool session_continues(const Reply& r, std::vector<bool>& active, std::size_t i) {
    if (r.verdict == Verdict::Accept) active[i] = false;  // no more events for this session
    return r.verdict == Verdict::Continue || r.verdict == Verdict::Accept;
  }

  void end_session(const Session& s, const std::string& why) {
    stats.outcomes[why] += static_cast<long>(s.messages.size());
    stats.messages += static_cast<long>(s.messages.size());
    sh_.done.fetch_add(static_cast<long>(s.messages.size()), std::memory_order_relaxed);
    for (auto& c : conns_) c->close();
    ++stats.sessions;
  }

  void run_message(const Message& m, const std::vector<bool>& session_active) {
    const auto t0 = Clock::now();
    const std::size_t n = conns_.size();
    std::vector<bool> on(session_active);  // still gets events for this message
    char qbuf[24];
    std::snprintf(qbuf, sizeof qbuf, "B%011llX", static_cast<unsigned long long>(sh_.qid.fetch_add(1)));
    const std::string qid = qbuf;
    std::string addr = m.mail_from.substr(1, m.mail_from.size() - 2);
    std::string host = addr.find('@') == std::string::npos ? "" : addr.substr(addr.find('@') + 1);
    Macros mm = {{"i", qid}, {"{mail_addr}", addr}, {"{mail_host}", host}, {"{mail_mailer}", "smtp"}};
    Macros im = {{"i", qid}};
    std::string outcome;  // empty while the message goes on

    // handle - a non-final reply: returns false when the message ends.
    auto handle = [&](const Reply& r, std::size_t i, const char* stage) {
      switch (r.verdict) {
        case Verdict::Continue:
        case Verdict::Skip: return true;
        case Verdict::Accept: on[i] = false; return true;
        default: outcome = std::string(stage) + "_" + to_text(r.verdict); return false;
      }
    };

    const std::vector<std::string> args = {"SIZE=" + std::to_string(m.size)};
    for (std::size_t i = 0; i < n && outcome.empty(); ++i) {
      if (on[i]) handle(conns_[i]->mail(mm, m.mail_from, args), i, "mail");
    }
    for (const auto& rc : m.rcpts) {
      Macros rm = {{"i", qid}, {"{rcpt_addr}", rc.substr(1, rc.size() - 2)}, {"{rcpt_mailer}", "local"}};
      for (std::size_t i = 0; i < n && outcome.empty(); ++i) {
        if (on[i]) handle(conns_[i]->rcpt(rm, rc), i, "rcpt");
      }
    }
    for (std::size_t i = 0; i < n && outcome.empty(); ++i) {
      if (on[i]) handle(conns_[i]->data(im), i, "data");
    }

    // Content: milter by milter, each seeing the header as the previous left it.
    const std::vector<Header>* headers = &m.headers;
    std::vector<Header> edited;
    bool held = false;
    for (std::size_t i = 0; i < n && outcome.empty(); ++i) {
      if (!on[i]) continue;
      MilterClient& c = *conns_[i];
      bool go = true;
      if (c.wants_headers()) {
        for (const auto& h : *headers) {
          Reply r = c.header(h.name, h.value);
          if (!handle(r, i, "header") || !on[i]) {
            go = false;
            break;
          }
        }
      }
      if (go && outcome.empty()) {
        Reply r = c.eoh(im);
        go = handle(r, i, "eoh") && on[i];
      }
      if (go && outcome.empty() && c.wants_body()) {
        std::string_view body = m.body;
        while (!body.empty()) {
          std::string_view chunk = body.substr(0, 65535);
          body.remove_prefix(chunk.size());
          Reply r = c.body(chunk);
          if (!handle(r, i, "body") || !on[i]) {
            go = false;
            break;
          }
          if (r.verdict == Verdict::Skip) break;
        }
      }
      if (!go || !outcome.empty()) continue;
      Reply r = c.end_of_body(im);
      MilterTally& t = stats.milters[i];
      t.eob_verdicts[to_text(r.verdict)]++;
      std::string dmarc;
      for (const auto& mod : r.mods) {
        t.mods[mod.type]++;
        if (mod.type == 'q') held = true;
        if ((mod.type == 'i' || mod.type == 'h') && iequal(mod.name, "Authentication-Results")) {
          for (auto& [meth, res] : ar_tokens(mod.value)) {
            t.tokens[meth + "=" + res]++;
            if (meth == "dmarc" && dmarc.empty()) dmarc = res;
          }
        }
      }
      if (r.verdict == Verdict::Reject && dmarc.empty()) dmarc = "fail";  // rejected before any A-R
      if (!dmarc.empty() && !m.expect.empty() && m.expect != "-") {
        if (dmarc == m.expect) {
          ++t.agree;
        } else {
          ++t.disagree;
          if (t.disagreements.size() < 8) t.disagreements.push_back(m.file + ": expected dmarc=" + m.expect + ", got " + dmarc);
        }
      } else if (!m.expect.empty() && m.expect != "-") {
        ++t.unknown;
      }
      if (sh_.opt.show > 0 && sh_.shown.load() < sh_.opt.show * static_cast<int>(n)) {
        std::lock_guard<std::mutex> lock(sh_.show_mutex);
        sh_.shown++;
        std::printf("--- %s via %s: %s%s%s\n", m.file.c_str(), c.endpoint().spec.c_str(), to_text(r.verdict),
                    r.text.empty() ? "" : " ", r.text.c_str());
        for (const auto& mod : r.mods) std::printf("    [%c %u] %s: %s\n", mod.type, mod.index, mod.name.c_str(), mod.value.c_str());
      }
      if (i + 1 < n && !r.mods.empty()) {
        if (headers != &edited) edited = *headers;
        apply_header_changes(edited, r.mods);
        headers = &edited;
      }
      handle(r, i, "eom");
    }
    if (outcome.empty()) outcome = held ? "accept_held" : "accept";
    stats.outcomes[outcome]++;
    stats.latency_us.push_back(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count()));
    // Postfix ends every message with an abort, then reuses the connection.
    for (std::size_t i = 0; i < n; ++i) {
      if (session_active[i]) conns_[i]->abort();
    }
  }

  // apply_header_changes - what Postfix's cleanup does with a milter's edits.
  static void apply_header_changes(std::vector<Header>& h, const std::vector<Modification>& mods) {
    auto stored = [](const std::string& v) {
      // Postfix stores "Name: value": one space after the colon unless the
      // value starts with white space.
      return (!v.empty() && (v[0] == ' ' || v[0] == '\t')) ? v : " " + v;
    };
    for (const auto& m : mods) {
      if (m.type == 'i') {
        std::size_t at = std::min<std::size_t>(m.index, h.size());
        h.insert(h.begin() + static_cast<std::ptrdiff_t>(at), Header{m.name, stored(m.value)});
      } else if (m.type == 'h') {
        h.push_back(Header{m.name, stored(m.value)});
      } else if (m.type == 'm') {
        // CHGHEADER: the index-th field of that name (1-based); "" deletes.
        std::uint32_t seen = 0;
        for (auto it = h.begin(); it != h.end(); ++it) {
          if (!iequal(it->name, m.name) || ++seen != std::max<std::uint32_t>(m.index, 1)) continue;
          if (m.value.empty()) h.erase(it);
          else it->value = stored(m.value);
          break;
        }
      }
    }
  }

  Shared& sh_;
  int id_;
  std::vector<std::unique_ptr<MilterClient>> conns_;
};

// ---------------------------------------------------------------- report

double pct(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  k = std::min(k, v.size() - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

const char* mod_name(char t) {
  switch (t) {
    case 'i': return "insheader";
    case 'h': return "addheader";
    case 'm': return "chgheader";
    case 'q': return "quarantine";
    case 'e': return "chgfrom";
    case '+': return "addrcpt";
    case '-': return "delrcpt";
    case '2': return "addrcpt_par";
    case 'b': return "replbody";
  }
  return "?";
}

struct RssSample {
  double t;
  long msgs;
  std::vector<long> kb;
};

// slope_per_100k - least-squares slope of RSS (KiB) against messages.
double slope_per_100k(const std::vector<RssSample>& s, std::size_t k) {
  if (s.size() < 3) return 0;
  std::size_t from = s.size() / 10;  // the first tenth still warms up
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = from; i < s.size(); ++i) {
    double x = static_cast<double>(s[i].msgs), y = static_cast<double>(s[i].kb[k]);
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double d = n * sxx - sx * sx;
  return d == 0 ? 0 : (n * sxy - sx * sy) / d * 100000.0;
}

void usage(FILE* f) {
  std::fprintf(f,
               "usage: milter-bench -m SOCKET [-m SOCKET]... [-c N] [-n MSGS] [-d SECONDS] [-w MSGS]\n"
               "                    [-p NAME=PID]... [--rss-every SECONDS] [--rss-log FILE] [--quickack]\n"
               "                    [--show N] [--label TEXT] [--max-errors N] CORPUS_DIR\n"
               "  -m SOCKET    milter to call: inet:PORT@HOST or unix:/PATH; twice for a chain\n"
               "  -c N         concurrent sessions (worker threads), default 1\n"
               "  -n MSGS      messages to measure (default: one pass over the corpus, or -d)\n"
               "  -d SECONDS   measure for this long (with -n: whichever ends first)\n"
               "  -w MSGS      warm-up messages before measuring, default 0\n"
               "  -p NAME=PID  account CPU time (and RSS) of this process per message\n"
               "  --rss-every S  sample the RSS of each -p process every S seconds; prints its slope\n"
               "  --rss-log F  write the samples to F (seconds, messages, KiB per process)\n"
               "  --quickack   set TCP_QUICKACK before each read (Postfix does not)\n"
               "  --show N     print the replies of the first N messages\n"
               "  --label T    name of this run in the RESULT line\n"
               "  --max-errors N  stop after more than N failed sessions (default 20)\n");
}

int run(int argc, char** argv) {
  Options opt;
  static const option longopts[] = {{"milter", required_argument, nullptr, 'm'},
                                    {"concurrency", required_argument, nullptr, 'c'},
                                    {"messages", required_argument, nullptr, 'n'},
                                    {"duration", required_argument, nullptr, 'd'},
                                    {"warmup", required_argument, nullptr, 'w'},
                                    {"pid", required_argument, nullptr, 'p'},
                                    {"rss-every", required_argument, nullptr, 1},
                                    {"rss-log", required_argument, nullptr, 2},
                                    {"quickack", no_argument, nullptr, 3},
                                    {"show", required_argument, nullptr, 4},
                                    {"label", required_argument, nullptr, 5},
                                    {"max-errors", required_argument, nullptr, 6},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  int ch;
  try {
    while ((ch = getopt_long(argc, argv, "m:c:n:d:w:p:h", longopts, nullptr)) != -1) {
      switch (ch) {
        case 'm': opt.milters.push_back(parse_endpoint(optarg)); break;
        case 'c': opt.concurrency = std::stoi(optarg); break;
        case 'n': opt.messages = std::stol(optarg); break;
        case 'd': opt.duration = std::stod(optarg); break;
        case 'w': opt.warmup = std::stol(optarg); break;
        case 'p': {
          std::string a = optarg;
          std::size_t eq = a.find('=');
          if (eq == std::string::npos) throw std::runtime_error("-p wants NAME=PID");
          opt.pids.emplace_back(a.substr(0, eq), std::stoi(a.substr(eq + 1)));
          break;
        }
        case 1: opt.rss_every = std::stod(optarg); break;
        case 2: opt.rss_log = optarg; break;
        case 3: opt.quickack = true; break;
        case 4: opt.show = std::stoi(optarg); break;
        case 5: opt.label = optarg; break;
        case 6: opt.max_errors = std::stol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "milter-bench: %s\n", e.what());
    return 2;
  }
  if (optind + 1 != argc || opt.milters.empty() || opt.concurrency < 1) {
    usage(stderr);
    return 2;
  }
  opt.corpus = argv[optind];

  Corpus corpus;
  try {
    corpus = load_corpus(opt.corpus);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "milter-bench: %s\n", e.what());
    return 2;
  }
  if (opt.messages == 0 && opt.duration == 0) opt.messages = static_cast<long>(corpus.messages.size());

  Shared sh{opt, corpus};
  sh.limit = opt.warmup;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < opt.concurrency; ++i) workers.push_back(std::make_unique<Worker>(sh, i));

  // Phases: warm-up, then measurement; the main thread reads /proc between.
  std::barrier sync(opt.concurrency + 1);
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&sync, &w, &opt] {
      if (opt.warmup > 0) w->run_phase();
      sync.arrive_and_wait();  // warm-up over
      w->stats.clear(opt.milters.size());
      sync.arrive_and_wait();  // measurement starts
      w->run_phase();
      sync.arrive_and_wait();  // measurement over
    });
  }
  // The workers run the warm-up now (or skip it with -w 0).
  sync.arrive_and_wait();
  sh.started = 0;
  sh.done = 0;
  sh.limit = opt.messages;
  sh.timed = opt.duration > 0;

  const long ticks = sysconf(_SC_CLK_TCK);
  std::vector<CpuTicks> cpu0;
  for (auto& [name, pid] : opt.pids) cpu0.push_back(read_cpu(pid));
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  const auto host0 = read_host_busy();
  const auto t0 = Clock::now();
  sh.deadline = t0 + std::chrono::microseconds(static_cast<long long>(opt.duration * 1e6));
  std::atomic<bool> measuring{true};
  std::vector<RssSample> rss;
  std::thread sampler;
  auto sample = [&] {
    RssSample s{std::chrono::duration<double>(Clock::now() - t0).count(), sh.done.load(), {}};
    for (auto& [name, pid] : opt.pids) s.kb.push_back(read_rss_kb(pid));
    rss.push_back(std::move(s));
  };
  if (!opt.pids.empty()) {
    sample();
    if (opt.rss_every > 0) {
      sampler = std::thread([&] {
        auto next = Clock::now();
        while (measuring) {
          next += std::chrono::microseconds(static_cast<long long>(opt.rss_every * 1e6));
          while (measuring && Clock::now() < next) std::this_thread::sleep_for(std::chrono::milliseconds(50));
          if (measuring) sample();
        }
      });
    }
  }
  sync.arrive_and_wait();  // go
  sync.arrive_and_wait();  // done
  const auto t1 = Clock::now();
  measuring = false;
  if (sampler.joinable()) sampler.join();
  std::vector<CpuTicks> cpu1;
  for (auto& [name, pid] : opt.pids) cpu1.push_back(read_cpu(pid));
  if (!opt.pids.empty()) sample();
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);
  const auto host1 = read_host_busy();
  for (auto& t : threads) t.join();

  Stats all;
  all.clear(opt.milters.size());
  for (auto& w : workers) {
    Stats& s = w->stats;
    all.latency_us.insert(all.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
    all.setup_us.insert(all.setup_us.end(), s.setup_us.begin(), s.setup_us.end());
    all.messages += s.messages;
    all.sessions += s.sessions;
    all.errors += s.errors;
    for (auto& [k, v] : s.outcomes) all.outcomes[k] += v;
    for (std::size_t i = 0; i < s.milters.size(); ++i) all.milters[i].merge(s.milters[i]);
    for (auto& e : s.error_texts)
      if (all.error_texts.size() < 5) all.error_texts.push_back(e);
  }

  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const double rate = secs > 0 ? static_cast<double>(all.messages) / secs : 0;
  const double p50 = pct(all.latency_us, 50), p90 = pct(all.latency_us, 90), p99 = pct(all.latency_us, 99),
               pmax = pct(all.latency_us, 100);
  const double s50 = pct(all.setup_us, 50), s99 = pct(all.setup_us, 99);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
  const double client_us = all.messages ? (tv(ru1.ru_utime) - tv(ru0.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_stime)) /
                                              static_cast<double>(all.messages)
                                        : 0;

  std::string chain;
  for (auto& m : opt.milters) chain += (chain.empty() ? "" : " -> ") + m.spec;
  std::printf("milter-bench %s: %s, concurrency %d\n", opt.label.c_str(), chain.c_str(), opt.concurrency);
  std::printf("  measured     %ld messages in %ld sessions, %.2f s (after %ld warm-up messages)\n", all.messages,
              all.sessions, secs, opt.warmup);
  std::printf("  throughput   %.1f msgs/s\n", rate);
  std::printf("  latency      p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (MAIL FROM to last end-of-body reply)\n",
              p50, p90, p99, pmax);
  std::printf("  session      setup p50 %.3f ms  p99 %.3f ms  (connect, negotiate, connect and helo events)\n", s50, s99);
  std::printf("  outcomes    ");
  for (auto& [k, v] : all.outcomes) std::printf(" %s %ld", k.c_str(), v);
  std::printf("   errors %ld\n", all.errors);
  for (auto& e : all.error_texts) std::printf("  error        %s\n", e.c_str());
  for (std::size_t i = 0; i < opt.milters.size(); ++i) {
    const MilterTally& t = all.milters[i];
    std::printf("  milter %zu     %s: end of body", i + 1, opt.milters[i].spec.c_str());
    for (auto& [k, v] : t.eob_verdicts) std::printf(" %s %ld", k.c_str(), v);
    std::printf(";");
    for (auto& [k, v] : t.mods) std::printf(" %s %ld", mod_name(k), v);
    std::printf("\n               A-R");
    for (auto& [k, v] : t.tokens) std::printf(" %s %ld", k.c_str(), v);
    if (t.agree + t.disagree + t.unknown > 0)
      std::printf("\n               dmarc as the corpus expects: %ld, not: %ld, no result: %ld", t.agree, t.disagree,
                  t.unknown);
    std::printf("\n");
    for (auto& d : t.disagreements) std::printf("               e.g. %s\n", d.c_str());
  }
  std::string cpu_kv;
  double cpu_total = 0;
  for (std::size_t k = 0; k < opt.pids.size(); ++k) {
    const auto& [name, pid] = opt.pids[k];
    if (!cpu0[k].ok || !cpu1[k].ok) {
      std::printf("  cpu          %s (pid %d): cannot read /proc\n", name.c_str(), pid);
      continue;
    }
    double u = static_cast<double>(cpu1[k].utime - cpu0[k].utime) * 1e6 / static_cast<double>(ticks);
    double s = static_cast<double>(cpu1[k].stime - cpu0[k].stime) * 1e6 / static_cast<double>(ticks);
    double per = all.messages ? (u + s) / static_cast<double>(all.messages) : 0;
    cpu_total += per;
    std::printf("  cpu          %-12s %8.1f us/msg  (user %.1f, sys %.1f)\n", name.c_str(), per,
                all.messages ? u / static_cast<double>(all.messages) : 0,
                all.messages ? s / static_cast<double>(all.messages) : 0);
    char buf[192];
    std::snprintf(buf, sizeof buf, " cpu_us.%s=%.1f cpu_user_us.%s=%.1f cpu_sys_us.%s=%.1f", name.c_str(), per,
                  name.c_str(), all.messages ? u / static_cast<double>(all.messages) : 0, name.c_str(),
                  all.messages ? s / static_cast<double>(all.messages) : 0);
    cpu_kv += buf;
  }
  if (!opt.pids.empty()) std::printf("  cpu          %-12s %8.1f us/msg\n", "sum", cpu_total);
  std::printf("  cpu          %-12s %8.1f us/msg  (this load generator)\n", "client", client_us);
  // How busy the whole machine was, and how much of that was not this
  // measurement (other work on the machine skews every number above).
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  const double host_total = static_cast<double>(host1.second - host0.second);
  const double host_busy = host_total > 0 ? static_cast<double>(host1.first - host0.first) / host_total * static_cast<double>(ncpu) : 0;
  const double ours_cores = secs > 0 ? (cpu_total + client_us) * static_cast<double>(all.messages) / 1e6 / secs : 0;
  const double others = std::max(0.0, host_busy - ours_cores);
  std::printf("  machine      %.2f of %ld CPUs busy: %.2f for the milters and this client, %.2f for everything else\n",
              host_busy, ncpu, ours_cores, others);
  std::string rss_kv;
  if (!rss.empty()) {
    for (std::size_t k = 0; k < opt.pids.size(); ++k) {
      long mx = 0;
      for (auto& s : rss) mx = std::max(mx, s.kb[k]);
      double slope = slope_per_100k(rss, k);
      std::printf("  rss          %-12s start %ld KiB  end %ld KiB  max %ld KiB", opt.pids[k].first.c_str(),
                  rss.front().kb[k], rss.back().kb[k], mx);
      if (rss.size() >= 3) std::printf("  slope %+.1f KiB per 100k messages (%zu samples)", slope, rss.size());
      std::printf("\n");
      char buf[128];
      std::snprintf(buf, sizeof buf, " rss_kb.%s=%ld rss_slope.%s=%.1f", opt.pids[k].first.c_str(), rss.back().kb[k],
                    opt.pids[k].first.c_str(), slope);
      rss_kv += buf;
    }
    if (!opt.rss_log.empty()) {
      std::ofstream f(opt.rss_log);
      f << "# seconds messages";
      for (auto& [name, pid] : opt.pids) f << " " << name << "_kib";
      f << "\n";
      for (auto& s : rss) {
        f << s.t << " " << s.msgs;
        for (long kb : s.kb) f << " " << kb;
        f << "\n";
      }
    }
  }
  long agree = 0, disagree = 0;
  for (auto& t : all.milters) {
    agree += t.agree;
    disagree += t.disagree;
  }
  std::printf("RESULT label=%s conc=%d msgs=%ld secs=%.2f rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
              "cpu_us=%.1f%s client_us=%.1f host_busy=%.2f host_other=%.2f errors=%ld dmarc_agree=%ld dmarc_disagree=%ld%s\n",
              opt.label.empty() ? "-" : opt.label.c_str(), opt.concurrency, all.messages, secs, rate, p50, p90, p99,
              pmax, cpu_total, cpu_kv.c_str(), client_us, host_busy, others, all.errors, agree, disagree, rss_kv.c_str());
  return all.errors ? 1 : 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) { return bench::run(argc, argv); }
