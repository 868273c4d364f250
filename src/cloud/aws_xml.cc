#include "cloud/aws_xml.h"

#include <cstdint>

namespace gpu_autoscaler::cloud {

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& c : children)
    if (c.name == child_name) return &c;
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child_name) const {
  const XmlElement* c = Child(child_name);
  return c == nullptr ? std::string() : c->text;
}

const XmlElement* XmlElement::Find(std::string_view path) const {
  const XmlElement* cur = this;
  while (cur != nullptr && !path.empty()) {
    size_t slash = path.find('/');
    cur = cur->Child(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  return cur;
}

std::vector<const XmlElement*> XmlElement::Children(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const XmlElement& c : children)
    if (c.name == child_name) out.push_back(&c);
  return out;
}

namespace {

constexpr size_t kMaxDocumentBytes = 8u << 20;
constexpr int kMaxDepth = 64;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool IsNameChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':' || u >= 0x80;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  Result<XmlElement> Document() {
    if (in_.size() > kMaxDocumentBytes) return Fail("document larger than 8 MiB");
    if (in_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark
    GPU_RETURN_IF_ERROR(SkipMisc());
    if (AtEnd() || in_[pos_] != '<') return Fail("expected a root element");
    XmlElement root;
    GPU_RETURN_IF_ERROR(Element(root, 0));
    GPU_RETURN_IF_ERROR(SkipMisc());
    if (!AtEnd()) return Fail("content after the root element");
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= in_.size(); }
  bool Peek(std::string_view s) const { return in_.substr(pos_).starts_with(s); }

  Status Fail(std::string_view what) const {
    return InvalidArgumentError("xml: " + std::string(what) + " at byte " + std::to_string(pos_));
  }

  void SkipSpace() {
    while (!AtEnd() && IsSpace(in_[pos_]))
      ++pos_;
  }

  // Skips to just past `terminator`; an error when it never comes.
  Status SkipPast(std::string_view terminator, std::string_view what) {
    size_t end = in_.find(terminator, pos_);
    if (end == std::string_view::npos) return Fail("unterminated " + std::string(what));
    pos_ = end + terminator.size();
    return Status::Ok();
  }

  // Whitespace, comments and processing instructions (the XML declaration
  // included) around the root element. DOCTYPE is refused.
  Status SkipMisc() {
    while (true) {
      SkipSpace();
      if (Peek("<?")) {
        GPU_RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
      } else if (Peek("<!--")) {
        GPU_RETURN_IF_ERROR(SkipPast("-->", "comment"));
      } else if (Peek("<!")) {
        return Fail("DOCTYPE and other declarations are not accepted");
      } else {
        return Status::Ok();
      }
    }
  }

  Result<std::string> Name() {
    size_t start = pos_;
    while (!AtEnd() && IsNameChar(in_[pos_]))
      ++pos_;
    if (pos_ == start) return Fail("expected a name");
    return std::string(in_.substr(start, pos_ - start));
  }

  static std::string LocalName(const std::string& qname) {
    size_t colon = qname.rfind(':');
    return colon == std::string::npos ? qname : qname.substr(colon + 1);
  }

  // Decodes one reference starting at '&' and appends it.
  Status Reference(std::string& out) {
    size_t semi = in_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return Fail("malformed entity");
    std::string_view ref = in_.substr(pos_ + 1, semi - pos_ - 1);
    if (ref == "lt") {
      out += '<';
    } else if (ref == "gt") {
      out += '>';
    } else if (ref == "amp") {
      out += '&';
    } else if (ref == "quot") {
      out += '"';
    } else if (ref == "apos") {
      out += '\'';
    } else if (ref.size() >= 2 && ref[0] == '#') {
      bool hex = ref[1] == 'x';
      std::string_view digits = ref.substr(hex ? 2 : 1);
      if (digits.empty()) return Fail("empty character reference");
      uint32_t cp = 0;
      for (char c : digits) {
        int v;
        if (c >= '0' && c <= '9') {
          v = c - '0';
        } else if (hex && c >= 'a' && c <= 'f') {
          v = c - 'a' + 10;
        } else if (hex && c >= 'A' && c <= 'F') {
          v = c - 'A' + 10;
        } else {
          return Fail("bad character reference");
        }
        cp = cp * (hex ? 16 : 10) + uint32_t(v);
        if (cp > 0x10FFFF) return Fail("character reference out of range");
      }
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return Fail("invalid character reference");
      AppendUtf8(out, cp);
    } else {
      return Fail("unknown entity &" + std::string(ref) + ";");
    }
    pos_ = semi + 1;
    return Status::Ok();
  }

  // Attributes are checked for well-formedness and dropped: AWS responses
  // carry only xmlns declarations.
  Status Attributes(bool* self_closing) {
    while (true) {
      size_t before = pos_;
      SkipSpace();
      if (AtEnd()) return Fail("unterminated start tag");
      if (Peek("/>")) {
        pos_ += 2;
        *self_closing = true;
        return Status::Ok();
      }
      if (in_[pos_] == '>') {
        ++pos_;
        *self_closing = false;
        return Status::Ok();
      }
      if (pos_ == before) return Fail("expected whitespace before an attribute");
      if (auto attr = Name(); !attr.ok()) return attr.error();
      SkipSpace();
      if (AtEnd() || in_[pos_] != '=') return Fail("expected '=' after an attribute name");
      ++pos_;
      SkipSpace();
      if (AtEnd() || (in_[pos_] != '"' && in_[pos_] != '\'')) return Fail("expected a quote");
      char quote = in_[pos_++];
      size_t end = in_.find(quote, pos_);
      if (end == std::string_view::npos) return Fail("unterminated attribute value");
      if (in_.substr(pos_, end - pos_).find('<') != std::string_view::npos)
        return Fail("'<' in an attribute value");
      pos_ = end + 1;
    }
  }

  Status Element(XmlElement& el, int depth) {
    if (depth >= kMaxDepth) return Fail("nesting deeper than 64 elements");
    ++pos_;  // '<'
    GPU_ASSIGN_OR_RETURN(std::string qname, Name());
    el.name = LocalName(qname);
    // "prefix:" has no local part: not a QName (Namespaces in XML 1.0, found
    // by aws_xml_fuzz), and an element without a name would match nothing.
    if (el.name.empty()) return Fail("element <" + qname + "> has no local name");
    bool self_closing = false;
    GPU_RETURN_IF_ERROR(Attributes(&self_closing));
    if (self_closing) return Status::Ok();
    while (true) {
      if (AtEnd()) return Fail("unterminated element <" + qname + ">");
      char c = in_[pos_];
      if (c == '<') {
        if (Peek("</")) {
          pos_ += 2;
          GPU_ASSIGN_OR_RETURN(std::string closing, Name());
          if (closing != qname) return Fail("</" + closing + "> does not close <" + qname + ">");
          SkipSpace();
          if (AtEnd() || in_[pos_] != '>') return Fail("expected '>'");
          ++pos_;
          return Status::Ok();
        }
        if (Peek("<![CDATA[")) {
          size_t start = pos_ + 9;
          size_t end = in_.find("]]>", start);
          if (end == std::string_view::npos) return Fail("unterminated CDATA section");
          el.text.append(in_.substr(start, end - start));
          pos_ = end + 3;
        } else if (Peek("<!--")) {
          GPU_RETURN_IF_ERROR(SkipPast("-->", "comment"));
        } else if (Peek("<?")) {
          GPU_RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
        } else if (Peek("<!")) {
          return Fail("declaration inside an element");
        } else {
          el.children.emplace_back();
          GPU_RETURN_IF_ERROR(Element(el.children.back(), depth + 1));
        }
      } else if (c == '&') {
        GPU_RETURN_IF_ERROR(Reference(el.text));
      } else {
        size_t end = in_.find_first_of("<&", pos_);
        if (end == std::string_view::npos) end = in_.size();
        el.text.append(in_.substr(pos_, end - pos_));
        pos_ = end;
      }
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

Result<XmlElement> ParseXml(std::string_view document) {
  return Parser(document).Document();
}

}  // namespace gpu_autoscaler::cloud
