// NAME
//   milter - the libmilter callbacks: thin glue between the MTA and Session
// DESCRIPTION
//   Each callback converts libmilter's C arguments, calls the Session of
//   the connection and converts the result back. No DMARC logic lives
//   here. No exception leaves a callback: anything thrown is logged and
//   answered with InternalErrorAction (tempfail or accept).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "engine.hpp"
#include "recorder.hpp"

namespace dmarc::milter {

// The engine new messages use; replaced atomically by a reload.
void set_current_engine(std::shared_ptr<const Engine> engine);
std::shared_ptr<const Engine> current_engine();

// Messages between MAIL FROM and end of message or abort, for the drain
// at SIGTERM.
// set_recorder / current_recorder - where evaluated messages are recorded
// (null: ReportStore none, or --eval). Outlives reloads; replaced when a
// reload changes ReportStore.
void set_recorder(std::shared_ptr<Recorder> recorder);
std::shared_ptr<Recorder> current_recorder();

int open_messages();

// set_draining - from now on, new messages get 451 4.3.2 (the milter is
// stopping); messages already open go on.
void set_draining(bool on);

// set_first_connection_check - FN runs once, at the first MTA connection
// (main.cpp: is the read buffer reached?).
void set_first_connection_check(void (*fn)());

// register_milter - smfi_register with our callbacks. Returns false and
// logs on failure.
bool register_milter();

}  // namespace dmarc::milter
