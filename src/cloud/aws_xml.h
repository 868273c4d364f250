// File: src/cloud/aws_xml.h
//
// A small, strict XML reader for AWS Query-protocol responses (Auto Scaling,
// STS): elements, attributes (skipped), character data, the five predefined
// entities and numeric character references, CDATA sections, comments and
// processing instructions (skipped). Namespace prefixes are dropped from
// element names; DOCTYPE is rejected (no entity expansion, no external
// references). Why not expat or libxml2: AWS answers are small, flat and
// namespace-qualified only by a default xmlns, and a 300-line reader keeps the
// dependency list unchanged (docs/design.md).
//
//   GPU_ASSIGN_OR_RETURN(XmlElement root, ParseXml(body));
//   const XmlElement* result = root.Child("DescribeAutoScalingGroupsResult");
//   std::string token = result ? result->ChildText("NextToken") : "";
//
// Limits: 64 levels of nesting, 8 MiB of input; beyond them an error.
//
// Thread-safety: pure functions; an XmlElement is a value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::cloud {

struct XmlElement {
  std::string name;  // local name, namespace prefix removed
  std::string text;  // concatenated character data directly inside this element
  std::vector<XmlElement> children;

  // First child named `name`, or nullptr.
  const XmlElement* Child(std::string_view child_name) const;
  // Text of the first child named `name`; "" when absent.
  std::string ChildText(std::string_view child_name) const;
  // Follows a path of child names ("Error/Code"); nullptr when any step is absent.
  const XmlElement* Find(std::string_view path) const;
  // Every child named `name`, in document order.
  std::vector<const XmlElement*> Children(std::string_view child_name) const;
};

// Parses one document. Errors are InvalidArgument with the byte offset.
Result<XmlElement> ParseXml(std::string_view document);

}  // namespace gpu_autoscaler::cloud
