// NAME
//   expected - a value or an error, for parsers that must not throw
// DESCRIPTION
//   Expected<T, E> holds either a T or an E. It is the small local type
//   STYLE.md asks for until the project moves to C++23 std::expected.
//   Access to the wrong alternative is a programming error (asserted).
#pragma once

#include <cassert>
#include <utility>
#include <variant>

namespace dmarc {

template <class E>
struct Unexpected {
  // A constructor, not aggregate initialization: clang before 16 has no
  // parenthesized aggregate init (the fuzz build, tests/fuzz).
  explicit Unexpected(E e) : error(std::move(e)) {}
  E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

template <class T, class E>
class Expected {
 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(implicit)
  Expected(Unexpected<E> e) : v_(std::in_place_index<1>, std::move(e.error)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const& { assert(!has_value()); return std::get<1>(v_); }
  E& error() & { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

}  // namespace dmarc
