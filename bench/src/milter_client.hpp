// milter_client.hpp - the MTA side of the milter protocol (version 6), as Postfix speaks it
//
// MilterClient is one connection to one milter. It frames commands
// (uint32 length in network order, one command octet, data), buffers them
// and writes them out only before it waits for a reply, as Postfix's
// buffered stream does: a macro packet and its command leave in one
// write(2). Sockets get no TCP_NODELAY and no TCP_QUICKACK unless asked
// (Postfix sets neither), so a milter whose reply is several packets meets
// Nagle's algorithm exactly as it does behind Postfix.
//
// The caller drives the events (connect, helo, mail, rcpt, data, header,
// eoh, body, end of body, abort, quit); the client skips what the milter
// asked not to get at option negotiation and reads no reply where the
// milter said it sends none (SMFIP_NR_*). Every reply is read: progress,
// the header and envelope changes of end of body, and the final verdict.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

// Endpoint - where a milter listens: inet:PORT@HOST or unix:/PATH (local:).
struct Endpoint {
  bool unix_socket = false;
  std::string host;  // inet: IPv4 or IPv6 literal
  int port = 0;
  std::string path;  // unix
  std::string spec;  // as given
};
Endpoint parse_endpoint(const std::string& spec);  // throws std::runtime_error

enum class Verdict { Continue, Accept, Reject, TempFail, Discard, Skip, ConnFail, Shutdown };
const char* to_text(Verdict v);

// Modification - one change asked for at end of body.
struct Modification {
  char type = 0;        // SMFIR_INSHEADER 'i', ADDHEADER 'h', CHGHEADER 'm', QUARANTINE 'q', ...
  std::uint32_t index = 0;
  std::string name;     // header name (or the quarantine reason, the new sender...)
  std::string value;
};

struct Reply {
  Verdict verdict = Verdict::Continue;
  std::string text;  // SMFIR_REPLYCODE text ("550 5.7.1 ...")
  std::vector<Modification> mods;
};

// Macros - name/value pairs sent with SMFIC_MACRO before a command.
using Macros = std::vector<std::pair<std::string, std::string>>;

struct ClientOptions {
  bool quickack = false;  // set TCP_QUICKACK before every read (what Postfix does not do)
  int timeout_ms = 30000;
  // Protocol flags (SMFIP_*) not to offer at negotiation, e.g. the no-reply
  // flags to play an MTA older than protocol 6.
  std::uint32_t withhold_protocol = 0;
};

class MilterClient {
 public:
  MilterClient(Endpoint ep, ClientOptions opt);
  ~MilterClient();
  MilterClient(const MilterClient&) = delete;
  MilterClient& operator=(const MilterClient&) = delete;

  // open - connect and negotiate (SMFIC_OPTNEG, version 6, every action
  // and protocol flag Postfix offers). Throws std::runtime_error.
  void open();
  void close();  // sends SMFIC_QUIT if open
  bool is_open() const { return fd_ >= 0; }

  // Events. Each returns the milter's reply (Continue when the milter
  // asked for no event or no reply). Throws on I/O or protocol errors.
  Reply connect(const Macros& m, std::string_view host, std::string_view ip, std::uint16_t port);
  Reply helo(const Macros& m, std::string_view name);
  Reply mail(const Macros& m, std::string_view from, const std::vector<std::string>& args);
  Reply rcpt(const Macros& m, std::string_view to);
  Reply data(const Macros& m);
  Reply header(std::string_view name, std::string_view value);  // value as stored: leading space kept
  Reply eoh(const Macros& m);
  Reply body(std::string_view chunk);
  Reply end_of_body(const Macros& m);
  void abort();  // no reply
  // send - write out what is buffered now, without waiting for a reply
  // (commands are otherwise written when a reply is awaited).
  void send() { flush(); }

  bool wants_headers() const;
  bool wants_body() const;
  std::uint32_t protocol_flags() const { return proto_; }
  std::uint32_t action_flags() const { return actions_; }
  std::uint32_t version() const { return version_; }
  const Endpoint& endpoint() const { return ep_; }

 private:
  void put(char cmd, std::string_view data);
  void put_macros(char for_cmd, const Macros& m);
  void flush();
  std::pair<char, std::string> get();  // one packet
  Reply await(bool end_of_body);
  Reply event(char cmd, std::string_view data, std::uint32_t no_flag, std::uint32_t nr_flag, bool eob = false);

  Endpoint ep_;
  ClientOptions opt_;
  int fd_ = -1;
  std::uint32_t version_ = 0;
  std::uint32_t actions_ = 0;
  std::uint32_t proto_ = 0;
  std::string out_;
  std::string in_;
  std::size_t in_pos_ = 0;
};

}  // namespace bench
