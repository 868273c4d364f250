// File: controllers/controller_selection.h
//
// `--controllers` as kube-controller-manager reads it: a comma-separated list
// where `*` turns on every controller that is on by default, `name` turns one
// on, and `-name` turns one off (later entries win).
//
//   auto on = SelectControllers("*,-budget", {"cost", "budget", "sharing-policy"});
//   // on == {"cost", "sharing-policy"}
//
// Thread-safety: a pure function.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::controllers {

// Unknown names are an error that lists the known ones.
Result<std::set<std::string>> SelectControllers(std::string_view flag,
                                                const std::vector<std::string>& known);

}  // namespace gpu_autoscaler::controllers
