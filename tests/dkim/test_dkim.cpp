#include <catch2/catch.hpp>
// placeholder, replaced in issue 3
