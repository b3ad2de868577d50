#include "lib/greet.h"

#include "lib/greet_version.h"

namespace greet {

std::string Greeting(const std::vector<std::string>& args) {
  std::string out = "Hello from hearth";
  for (size_t i = 0; i < args.size(); ++i) {
    out += (i == 0) ? ": " : " ";
    out += args[i];
  }
  return out;
}

std::string Version() { return GREET_VERSION; }

}  // namespace greet
