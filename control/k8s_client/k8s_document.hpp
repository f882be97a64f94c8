// Kubernetes objects as a user hands them to `magline plan`: JSON (`kubectl get -o json`) or
// YAML (`kubectl get -o yaml`, or manifests separated by `---`), told apart by their first
// character, and made into the JSON document control/k8s/plan.hpp's parse_list reads.
//
// Pure functions of their arguments: any thread, no I/O.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dataplane/result.hpp"

namespace magline::control {

// One YAML document as JSON. Plain scalars resolve as YAML 1.2's core schema does (`80` a
// number, `true` a boolean, `null`/`~`/nothing null; `yes` and `on` stay strings),
// except where Kubernetes types say string (names, labels, annotations, selectors, addresses,
// protocols, ...): there `80` stays "80", as sigs.k8s.io/yaml decodes against the Go types.
// Quoted and block scalars are strings. An Error names the line and column ("3:7: ...") of a
// value JSON cannot hold (.nan, .inf, a number no double holds) or a key that is not a scalar.
Result<nlohmann::json> yaml_to_json(std::string_view yaml);

// The objects in `text`: JSON when its first non-blank character is '{' or '[', YAML
// otherwise. Several YAML documents become one `List` of their objects (a List among them adds
// its items; empty documents are skipped), so that parse_list reads them as kubectl's output.
// Errors are one line starting with `source`: "k8s.yaml:4:3: invalid YAML: ...".
Result<nlohmann::json> parse_k8s_document(std::string_view text, const std::string& source);

}  // namespace magline::control
