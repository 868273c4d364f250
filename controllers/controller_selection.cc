#include "controllers/controller_selection.h"

#include <algorithm>

namespace gpu_autoscaler::controllers {

Result<std::set<std::string>> SelectControllers(std::string_view flag,
                                                const std::vector<std::string>& known) {
  std::set<std::string> on;
  auto known_list = [&] {
    std::string list;
    for (const std::string& k : known)
      list += (list.empty() ? "" : ", ") + k;
    return list;
  };
  if (flag.empty()) return InvalidArgumentError("--controllers: empty (use * for all)");
  while (true) {
    const size_t comma = flag.find(',');
    std::string_view item = flag.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item == "*") {
      on.insert(known.begin(), known.end());
    } else {
      const bool off = !item.empty() && item.front() == '-';
      const std::string name(off ? item.substr(1) : item);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        return InvalidArgumentError("--controllers: unknown controller \"" + name +
                                    "\" (known: " + known_list() + ")");
      }
      if (off) {
        on.erase(name);
      } else {
        on.insert(name);
      }
    }
    if (comma == std::string_view::npos) break;
    flag.remove_prefix(comma + 1);
  }
  return on;
}

}  // namespace gpu_autoscaler::controllers
