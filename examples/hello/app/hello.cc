#include <cstdio>
#include <string>
#include <vector>

#include "lib/greet.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::printf("%s\n", greet::Greeting(args).c_str());
  return 0;
}
