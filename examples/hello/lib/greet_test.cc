#include <cstdio>
#include <string>

#include "lib/greet.h"

static int failures = 0;

static void ExpectEq(const std::string& got, const std::string& want) {
  if (got != want) {
    std::printf("FAIL: got \"%s\", want \"%s\"\n", got.c_str(), want.c_str());
    ++failures;
  }
}

int main() {
  ExpectEq(greet::Greeting({}), "Hello from hearth");
  ExpectEq(greet::Greeting({"a"}), "Hello from hearth: a");
  ExpectEq(greet::Greeting({"a", "b"}), "Hello from hearth: a b");
  ExpectEq(greet::Version(), "1");
  if (failures == 0) std::printf("greet_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
