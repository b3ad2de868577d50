#ifndef LIB_GREET_H_
#define LIB_GREET_H_

#include <string>
#include <vector>

namespace greet {

// "Hello from hearth", followed by ": " and the space-separated args if there are any.
std::string Greeting(const std::vector<std::string>& args);

// Version string produced by the //lib:greet_version genrule.
std::string Version();

}  // namespace greet

#endif  // LIB_GREET_H_
