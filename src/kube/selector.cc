#include "kube/selector.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

// The grammar, the order of checks and the error texts follow
// k8s.io/apimachinery/pkg/labels/selector.go and pkg/fields/selector.go, so a
// client sees the same message from our API server as from kube-apiserver.

namespace gpu_autoscaler::kube {
namespace {

// ---------------------------------------------------------------------------
// Label keys and values (k8s.io/apimachinery/pkg/util/validation).

constexpr std::string_view kQualifiedNameFmt =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
constexpr std::string_view kLabelValueErr =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
constexpr std::string_view kDns1123SubdomainErr =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

bool IsAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool MatchesQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*
bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (label.empty() || !lower_alnum(label.front()) || !lower_alnum(label.back())) return false;
    for (char c : label) {
      if (!lower_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Go's %q for the ASCII strings selectors hold.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::vector<std::string> QualifiedNameErrors(std::string_view value) {
  std::vector<std::string> errs;
  std::string_view name = value;
  size_t slash = value.find('/');
  if (slash != std::string_view::npos) {
    if (value.find('/', slash + 1) != std::string_view::npos) {
      errs.push_back("a qualified name " + std::string(kQualifiedNameFmt) +
                     " with an optional DNS subdomain prefix and '/' (e.g. "
                     "'example.com/MyName')");
      return errs;
    }
    std::string_view prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      if (prefix.size() > 253) errs.push_back("prefix part must be no more than 253 characters");
      if (!IsDns1123Subdomain(prefix))
        errs.push_back("prefix part " + std::string(kDns1123SubdomainErr));
    }
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    errs.push_back("name part must be no more than 63 characters");
  }
  if (!name.empty() && !MatchesQualifiedNamePart(name)) {
    errs.push_back("name part " + std::string(kQualifiedNameFmt));
  }
  return errs;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

Status ValidateLabelKey(std::string_view key) {
  auto errs = QualifiedNameErrors(key);
  if (errs.empty()) return Status::Ok();
  return InvalidArgumentError("invalid label key " + Quote(key) + ": " + Join(errs, "; "));
}

Status ValidateLabelValue(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back("must be no more than 63 characters");
  if (!value.empty() && !MatchesQualifiedNamePart(value)) errs.emplace_back(kLabelValueErr);
  if (errs.empty()) return Status::Ok();
  return InvalidArgumentError("invalid label value: " + Quote(value) + ": " + Join(errs, "; "));
}

using Op = LabelSelector::Op;

// labels.NewRequirement: validates and normalises (values sorted, unique).
gpu_autoscaler::Result<LabelSelector::Requirement> NewRequirement(std::string key, Op op,
                                                                  std::vector<std::string> values) {
  GPU_RETURN_IF_ERROR(ValidateLabelKey(key));
  switch (op) {
    case Op::kIn:
    case Op::kNotIn:
      if (values.empty()) {
        return InvalidArgumentError("for 'in', 'notin' operators, values set can't be empty");
      }
      break;
    case Op::kEquals:
    case Op::kNotEquals:
      if (values.size() != 1) {
        return InvalidArgumentError("exact-match compatibility requires one single value");
      }
      break;
    case Op::kExists:
    case Op::kDoesNotExist:
      if (!values.empty()) {
        return InvalidArgumentError("values set must be empty for exists and does not exist");
      }
      break;
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  for (const std::string& v : values)
    GPU_RETURN_IF_ERROR(ValidateLabelValue(v));
  return LabelSelector::Requirement{std::move(key), op, std::move(values)};
}

// ---------------------------------------------------------------------------
// The label selector lexer and parser.

enum class Token {
  kError,
  kEndOfString,
  kClosedPar,
  kComma,
  kDoesNotExist,  // "!"
  kDoubleEquals,
  kEquals,
  kGreaterThan,
  kIdentifier,
  kIn,
  kLessThan,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

bool IsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool IsSpecialSymbol(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

bool SymbolToken(std::string_view s, Token* tok) {
  if (s == ")")
    *tok = Token::kClosedPar;
  else if (s == ",")
    *tok = Token::kComma;
  else if (s == "!")
    *tok = Token::kDoesNotExist;
  else if (s == "==")
    *tok = Token::kDoubleEquals;
  else if (s == "=")
    *tok = Token::kEquals;
  else if (s == ">")
    *tok = Token::kGreaterThan;
  else if (s == "<")
    *tok = Token::kLessThan;
  else if (s == "!=")
    *tok = Token::kNotEquals;
  else if (s == "(")
    *tok = Token::kOpenPar;
  else
    return false;
  return true;
}

struct Lexeme {
  Token tok;
  std::string lit;
};

std::vector<Lexeme> Lex(std::string_view s) {
  std::vector<Lexeme> out;
  size_t pos = 0;
  while (true) {
    while (pos < s.size() && IsWhitespace(s[pos]))
      ++pos;
    if (pos >= s.size()) {
      out.push_back({Token::kEndOfString, ""});
      return out;
    }
    if (IsSpecialSymbol(s[pos])) {
      // Longest run of symbol characters that is still a token.
      size_t end = pos;
      Token last = Token::kError;
      size_t last_len = 0;
      while (end < s.size() && IsSpecialSymbol(s[end])) {
        ++end;
        Token t;
        if (SymbolToken(s.substr(pos, end - pos), &t)) {
          last = t;
          last_len = end - pos;
        } else {
          break;
        }
      }
      if (last_len == 0) {
        std::string run(s.substr(pos, end - pos));
        out.push_back({Token::kError, "error expected: keyword found '" + run + "'"});
        return out;
      }
      out.push_back({last, std::string(s.substr(pos, last_len))});
      pos += last_len;
      continue;
    }
    size_t end = pos;
    while (end < s.size() && !IsWhitespace(s[end]) && !IsSpecialSymbol(s[end]))
      ++end;
    std::string word(s.substr(pos, end - pos));
    Token tok = word == "in" ? Token::kIn : word == "notin" ? Token::kNotIn : Token::kIdentifier;
    out.push_back({tok, std::move(word)});
    pos = end;
  }
}

class LabelParser {
 public:
  explicit LabelParser(std::vector<Lexeme> lexemes) : lex_(std::move(lexemes)) {}

  gpu_autoscaler::Result<std::vector<LabelSelector::Requirement>> Parse() {
    std::vector<LabelSelector::Requirement> reqs;
    while (true) {
      auto [tok, lit] = Lookahead(/*values=*/true);
      switch (tok) {
        case Token::kIdentifier:
        case Token::kDoesNotExist: {
          auto req = ParseRequirement();
          if (!req.ok()) {
            return InvalidArgumentError("unable to parse requirement: " + req.error().message());
          }
          reqs.push_back(std::move(req).value());
          auto [t, l] = Consume(/*values=*/true);
          if (t == Token::kEndOfString) return reqs;
          if (t == Token::kComma) {
            auto [t2, l2] = Lookahead(/*values=*/true);
            if (t2 != Token::kIdentifier && t2 != Token::kDoesNotExist) {
              return InvalidArgumentError("found '" + l2 + "', expected: identifier after ','");
            }
            break;
          }
          return InvalidArgumentError("found '" + l + "', expected: ',' or 'end of string'");
        }
        case Token::kEndOfString:
          return reqs;
        default:
          return InvalidArgumentError("found '" + lit +
                                      "', expected: !, identifier, or 'end of string'");
      }
    }
  }

 private:
  // In a value position the keywords "in" and "notin" are plain identifiers.
  std::pair<Token, std::string> Lookahead(bool values) const {
    const Lexeme& l = lex_[std::min(pos_, lex_.size() - 1)];
    Token t = l.tok;
    if (values && (t == Token::kIn || t == Token::kNotIn)) t = Token::kIdentifier;
    return {t, l.lit};
  }
  std::pair<Token, std::string> Consume(bool values) {
    auto r = Lookahead(values);
    if (pos_ < lex_.size() - 1) ++pos_;
    return r;
  }

  gpu_autoscaler::Result<LabelSelector::Requirement> ParseRequirement() {
    bool negated = false;
    auto [tok, lit] = Consume(true);
    if (tok == Token::kDoesNotExist) {
      negated = true;
      std::tie(tok, lit) = Consume(true);
    }
    if (tok != Token::kIdentifier) {
      return InvalidArgumentError("found '" + lit + "', expected: identifier");
    }
    GPU_RETURN_IF_ERROR(ValidateLabelKey(lit));
    std::string key = lit;
    Token next = Lookahead(true).first;
    if (next == Token::kEndOfString || next == Token::kComma) {
      return NewRequirement(std::move(key), negated ? Op::kDoesNotExist : Op::kExists, {});
    }
    if (negated) {
      // "!key=value": Go keeps DoesNotExist and ignores the rest, which then
      // fails at the next token; reproduce its message.
      return NewRequirement(std::move(key), Op::kDoesNotExist, {});
    }
    auto [op_tok, op_lit] = Consume(false);
    Op op;
    switch (op_tok) {
      case Token::kIn:
        op = Op::kIn;
        break;
      case Token::kNotIn:
        op = Op::kNotIn;
        break;
      case Token::kEquals:
      case Token::kDoubleEquals:
        op = Op::kEquals;
        break;
      case Token::kNotEquals:
        op = Op::kNotEquals;
        break;
      case Token::kGreaterThan:
      case Token::kLessThan:
        return InvalidArgumentError("operator '" + op_lit + "' is not supported by this client");
      default:
        return InvalidArgumentError("found '" + op_lit +
                                    "', expected: in, notin, =, ==, !=, gt, lt");
    }
    std::vector<std::string> values;
    if (op == Op::kIn || op == Op::kNotIn) {
      GPU_ASSIGN_OR_RETURN(values, ParseValues());
    } else {
      GPU_ASSIGN_OR_RETURN(values, ParseExactValue());
    }
    return NewRequirement(std::move(key), op, std::move(values));
  }

  gpu_autoscaler::Result<std::vector<std::string>> ParseValues() {
    auto [tok, lit] = Consume(true);
    if (tok != Token::kOpenPar) return InvalidArgumentError("found '" + lit + "' expected: '('");
    std::tie(tok, lit) = Lookahead(true);
    if (tok == Token::kIdentifier || tok == Token::kComma) {
      GPU_ASSIGN_OR_RETURN(auto values, ParseIdentifiersList());
      if (Consume(true).first != Token::kClosedPar) {
        return InvalidArgumentError("found '" + lit + "', expected: ')'");
      }
      return values;
    }
    if (tok == Token::kClosedPar) {
      Consume(true);
      return std::vector<std::string>{""};
    }
    return InvalidArgumentError("found '" + lit + "', expected: ',', ')' or identifier");
  }

  gpu_autoscaler::Result<std::vector<std::string>> ParseIdentifiersList() {
    std::vector<std::string> values;
    while (true) {
      auto [tok, lit] = Consume(true);
      if (tok == Token::kIdentifier) {
        values.push_back(lit);
        auto [t2, l2] = Lookahead(true);
        if (t2 == Token::kComma) continue;
        if (t2 == Token::kClosedPar) return values;
        return InvalidArgumentError("found '" + l2 + "', expected: ',' or ')'");
      }
      if (tok == Token::kComma) {
        if (values.empty()) values.emplace_back("");  // "(,"
        Token t2 = Lookahead(true).first;
        if (t2 == Token::kClosedPar) {
          values.emplace_back("");
          return values;
        }
        if (t2 == Token::kComma) {
          Consume(true);
          values.emplace_back("");
        }
        continue;
      }
      return InvalidArgumentError("found '" + lit + "', expected: ',', or identifier");
    }
  }

  gpu_autoscaler::Result<std::vector<std::string>> ParseExactValue() {
    Token t = Lookahead(true).first;
    if (t == Token::kEndOfString || t == Token::kComma) return std::vector<std::string>{""};
    auto [tok, lit] = Consume(true);
    if (tok == Token::kIdentifier) return std::vector<std::string>{lit};
    return InvalidArgumentError("found '" + lit + "', expected: identifier");
  }

  std::vector<Lexeme> lex_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Field selectors.

std::vector<std::string_view> SplitFieldTerms(std::string_view s) {
  std::vector<std::string_view> terms;
  if (s.empty()) return terms;
  size_t start = 0;
  bool in_slash = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (in_slash) {
      in_slash = false;
    } else if (s[i] == '\\') {
      in_slash = true;
    } else if (s[i] == ',') {
      terms.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(s.substr(start));
  return terms;
}

gpu_autoscaler::Result<std::string> UnescapeFieldValue(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool in_slash = false;
  for (char c : s) {
    if (in_slash) {
      if (c != '\\' && c != ',' && c != '=') {
        return InvalidArgumentError(
            std::string("invalid field selector: invalid escape sequence: \\") + c);
      }
      out.push_back(c);
      in_slash = false;
      continue;
    }
    if (c == '\\') {
      in_slash = true;
    } else if (c == ',' || c == '=') {
      return InvalidArgumentError(std::string("invalid field selector: unescaped character '") + c +
                                  "'");
    } else {
      out.push_back(c);
    }
  }
  if (in_slash) return InvalidArgumentError("invalid field selector: invalid escape sequence: \\");
  return out;
}

}  // namespace

gpu_autoscaler::Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelParser parser(Lex(text));
  // A lexer error surfaces as the token's literal in the parser's message,
  // the way Go's parser reports an ErrorToken.
  GPU_ASSIGN_OR_RETURN(auto reqs, parser.Parse());
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const Requirement& a, const Requirement& b) { return a.key < b.key; });
  LabelSelector sel;
  sel.reqs_ = std::move(reqs);
  return sel;
}

gpu_autoscaler::Result<LabelSelector> LabelSelector::FromJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("label selector: invalid JSON");
  if (j.is_null()) {
    return InvalidArgumentError("label selector: a null selector matches nothing");
  }
  if (!j.is_object()) return InvalidArgumentError("label selector: expected an object");
  std::vector<Requirement> reqs;
  if (auto ml = j.find("matchLabels"); ml != j.end() && !ml->is_null()) {
    if (!ml->is_object())
      return InvalidArgumentError("label selector: matchLabels: expected an object");
    for (auto it = ml->begin(); it != ml->end(); ++it) {
      if (!it->is_string()) {
        return InvalidArgumentError("label selector: matchLabels." + it.key() +
                                    ": expected a string");
      }
      GPU_ASSIGN_OR_RETURN(auto req,
                           NewRequirement(it.key(), Op::kEquals, {it->get<std::string>()}));
      reqs.push_back(std::move(req));
    }
  }
  if (auto me = j.find("matchExpressions"); me != j.end() && !me->is_null()) {
    if (!me->is_array()) {
      return InvalidArgumentError("label selector: matchExpressions: expected an array");
    }
    for (const auto& expr : *me) {
      if (!expr.is_object()) {
        return InvalidArgumentError("label selector: matchExpressions: expected objects");
      }
      auto key_it = expr.find("key");
      auto op_it = expr.find("operator");
      std::string key =
          key_it != expr.end() && key_it->is_string() ? key_it->get<std::string>() : "";
      std::string op_name =
          op_it != expr.end() && op_it->is_string() ? op_it->get<std::string>() : "";
      std::vector<std::string> values;
      if (auto v = expr.find("values"); v != expr.end() && !v->is_null()) {
        if (!v->is_array()) {
          return InvalidArgumentError("label selector: matchExpressions.values: expected an array");
        }
        for (const auto& value : *v) {
          if (!value.is_string()) {
            return InvalidArgumentError(
                "label selector: matchExpressions.values: expected strings");
          }
          values.push_back(value.get<std::string>());
        }
      }
      Op op;
      if (op_name == "In")
        op = Op::kIn;
      else if (op_name == "NotIn")
        op = Op::kNotIn;
      else if (op_name == "Exists")
        op = Op::kExists;
      else if (op_name == "DoesNotExist")
        op = Op::kDoesNotExist;
      else
        return InvalidArgumentError(Quote(op_name) + " is not a valid pod selector operator");
      GPU_ASSIGN_OR_RETURN(auto req, NewRequirement(std::move(key), op, std::move(values)));
      reqs.push_back(std::move(req));
    }
  }
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const Requirement& a, const Requirement& b) { return a.key < b.key; });
  LabelSelector sel;
  sel.reqs_ = std::move(reqs);
  return sel;
}

bool LabelSelector::Holds(const Requirement& r, std::optional<std::string_view> value) {
  // Values are sorted and unique (NewRequirement).
  const bool listed = value && std::binary_search(r.values.begin(), r.values.end(), *value);
  switch (r.op) {
    case Op::kEquals:
    case Op::kIn:
      return listed;
    case Op::kNotEquals:
    case Op::kNotIn:
      return !listed;
    case Op::kExists:
      return value.has_value();
    case Op::kDoesNotExist:
      return !value.has_value();
  }
  return false;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const Requirement& r : reqs_) {
    auto it = labels.find(r.key);
    if (!Holds(r, it == labels.end() ? std::nullopt : std::optional<std::string_view>(it->second)))
      return false;
  }
  return true;
}

bool LabelSelector::Matches(
    const std::function<const std::string*(std::string_view key)>& get) const {
  for (const Requirement& r : reqs_) {
    const std::string* value = get(r.key);
    if (!Holds(r, value ? std::optional<std::string_view>(*value) : std::nullopt)) return false;
  }
  return true;
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const Requirement& r : reqs_) {
    if (!out.empty()) out += ',';
    switch (r.op) {
      case Op::kDoesNotExist:
        out += "!" + r.key;
        break;
      case Op::kExists:
        out += r.key;
        break;
      case Op::kEquals:
        out += r.key + "=" + r.values.front();
        break;
      case Op::kNotEquals:
        out += r.key + "!=" + r.values.front();
        break;
      case Op::kIn:
        out += r.key + " in (" + Join(r.values, ",") + ")";
        break;
      case Op::kNotIn:
        out += r.key + " notin (" + Join(r.values, ",") + ")";
        break;
    }
  }
  return out;
}

gpu_autoscaler::Result<FieldSelector> FieldSelector::Parse(std::string_view text) {
  std::vector<std::string_view> parts = SplitFieldTerms(text);
  std::sort(parts.begin(), parts.end());
  FieldSelector sel;
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    // The first operator occurrence splits the term; "!=" and "==" win over "=".
    size_t op_pos = std::string_view::npos;
    size_t op_len = 0;
    bool equals = true;
    for (size_t i = 0; i < part.size() && op_pos == std::string_view::npos; ++i) {
      std::string_view rest = part.substr(i);
      if (rest.starts_with("!=")) {
        op_pos = i, op_len = 2, equals = false;
      } else if (rest.starts_with("==")) {
        op_pos = i, op_len = 2;
      } else if (rest.starts_with("=")) {
        op_pos = i, op_len = 1;
      }
    }
    if (op_pos == std::string_view::npos) {
      return InvalidArgumentError("invalid selector: '" + std::string(text) +
                                  "'; can't understand '" + std::string(part) + "'");
    }
    GPU_ASSIGN_OR_RETURN(std::string value, UnescapeFieldValue(part.substr(op_pos + op_len)));
    sel.reqs_.push_back({std::string(part.substr(0, op_pos)), equals, std::move(value)});
  }
  return sel;
}

bool FieldSelector::Matches(
    const std::function<const std::string*(std::string_view field)>& get) const {
  for (const Requirement& r : reqs_) {
    const std::string* value = get(r.field);
    if (value == nullptr) return false;  // the server rejects unknown fields up front
    if ((*value == r.value) != r.equals) return false;
  }
  return true;
}

}  // namespace gpu_autoscaler::kube
