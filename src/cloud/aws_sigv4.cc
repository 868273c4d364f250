#include "cloud/aws_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>

namespace gpu_autoscaler::cloud {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

// Trims and collapses runs of spaces, as SigV4 canonical headers require.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string CanonicalPath(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> stack;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (!stack.empty()) stack.pop_back();
    } else if (!seg.empty() && seg != ".") {
      stack.push_back(seg);
    }
    start = slash + 1;
  }
  std::string out = "/";
  for (size_t i = 0; i < stack.size(); ++i) {
    if (i > 0) out += '/';
    // Non-S3 services sign the already-encoded path encoded once more.
    out += AwsUriEncode(stack[i]);
  }
  if (!stack.empty() && path.back() == '/') out += '/';
  return out;
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(start, amp - start);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      std::string_view k = kv.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
      params.emplace_back(AwsUriEncode(AwsUriDecode(k)), AwsUriEncode(AwsUriDecode(v)));
    }
    start = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string HeaderValue(const kube::Headers& headers, std::string_view lower_name) {
  for (const auto& [n, v] : headers)
    if (Lower(n) == lower_name) return v;
  return "";
}

}  // namespace

std::string AwsUriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out += char(c);
    } else {
      out += '%';
      out += kHexUpper[c >> 4];
      out += kHexUpper[c & 15];
    }
  }
  return out;
}

std::string AwsUriDecode(std::string_view s, bool plus_is_space) {
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out += char(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(std::string_view(reinterpret_cast<char*>(md), len));
}

std::vector<std::string> AllHeaderNames(const SigV4Input& in) {
  std::vector<std::string> names;
  for (const auto& h : in.headers)
    names.push_back(Lower(h.first));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string CanonicalRequest(const SigV4Input& in, const std::vector<std::string>& signed_headers) {
  std::map<std::string, std::string> values;  // sorted by lowercase name
  for (const auto& [name, value] : in.headers) {
    std::string lname = Lower(name);
    if (std::find(signed_headers.begin(), signed_headers.end(), lname) == signed_headers.end())
      continue;
    auto [it, inserted] = values.emplace(lname, CanonicalHeaderValue(value));
    if (!inserted) it->second += "," + CanonicalHeaderValue(value);
  }
  std::string out =
      in.method + "\n" + CanonicalPath(in.path) + "\n" + CanonicalQuery(in.query) + "\n";
  std::string names;
  for (const auto& [name, value] : values) {
    out += name + ":" + value + "\n";
    if (!names.empty()) names += ';';
    names += name;
  }
  out += "\n" + names + "\n" + Sha256Hex(in.body);
  return out;
}

std::string StringToSign(std::string_view amz_date, const AwsScope& scope,
                         std::string_view canonical_request) {
  std::string date(amz_date.substr(0, 8));
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + date + "/" + scope.region + "/" +
         scope.service + "/aws4_request\n" + Sha256Hex(canonical_request);
}

std::string SigningKey(std::string_view secret_access_key, std::string_view date,
                       const AwsScope& scope) {
  std::string k = Hmac("AWS4" + std::string(secret_access_key), date);
  k = Hmac(k, scope.region);
  k = Hmac(k, scope.service);
  return Hmac(k, "aws4_request");
}

std::string SignatureHex(std::string_view signing_key, std::string_view string_to_sign) {
  return Hex(Hmac(signing_key, string_to_sign));
}

std::string AuthorizationHeader(std::string_view access_key_id, std::string_view amz_date,
                                const AwsScope& scope,
                                const std::vector<std::string>& signed_headers,
                                std::string_view signature_hex) {
  std::string names;
  for (const auto& n : signed_headers) {
    if (!names.empty()) names += ';';
    names += n;
  }
  return "AWS4-HMAC-SHA256 Credential=" + std::string(access_key_id) + "/" +
         std::string(amz_date.substr(0, 8)) + "/" + scope.region + "/" + scope.service +
         "/aws4_request, SignedHeaders=" + names + ", Signature=" + std::string(signature_hex);
}

Result<std::string> SignSigV4(const SigV4Input& in, const std::vector<std::string>& signed_headers,
                              const AwsCredentials& creds, const AwsScope& scope) {
  std::string amz_date = HeaderValue(in.headers, "x-amz-date");
  if (amz_date.size() != 16 || amz_date[8] != 'T' || amz_date[15] != 'Z')
    return InvalidArgumentError(
        "sigv4: the request needs an X-Amz-Date of the form YYYYMMDDTHHMMSSZ");
  std::vector<std::string> names = signed_headers;
  std::sort(names.begin(), names.end());
  std::string creq = CanonicalRequest(in, names);
  std::string sts = StringToSign(amz_date, scope, creq);
  std::string key = SigningKey(creds.secret_access_key, amz_date.substr(0, 8), scope);
  return AuthorizationHeader(creds.access_key_id, amz_date, scope, names, SignatureHex(key, sts));
}

std::string FormatAmzDate(Clock::WallTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Result<UrlParts> SplitUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return InvalidArgumentError("not an absolute URL");
  UrlParts parts;
  parts.scheme = std::string(url.substr(0, scheme_end));
  std::string_view rest = url.substr(scheme_end + 3);
  size_t path_start = rest.find_first_of("/?");
  parts.authority = std::string(rest.substr(0, path_start));
  if (parts.authority.empty()) return InvalidArgumentError("URL without a host");
  std::string_view tail = path_start == std::string_view::npos ? "" : rest.substr(path_start);
  size_t q = tail.find('?');
  parts.path = std::string(tail.substr(0, q));
  if (parts.path.empty()) parts.path = "/";
  if (q != std::string_view::npos) parts.query = std::string(tail.substr(q + 1));
  return parts;
}

Status SignAwsRequest(kube::HttpRequest& req, const AwsCredentials& creds, const AwsScope& scope,
                      Clock::WallTime now) {
  GPU_ASSIGN_OR_RETURN(UrlParts url, SplitUrl(req.url));
  // Drop default ports: curl sends Host without them, and Host is signed.
  std::string host = url.authority;
  if ((url.scheme == "https" && host.ends_with(":443")) ||
      (url.scheme == "http" && host.ends_with(":80")))
    host = host.substr(0, host.rfind(':'));
  std::erase_if(req.headers, [](const auto& h) {
    std::string n = Lower(h.first);
    return n == "host" || n == "authorization" || n == "x-amz-date" || n == "x-amz-security-token";
  });
  req.headers.emplace_back("Host", host);
  req.headers.emplace_back("X-Amz-Date", FormatAmzDate(now));
  if (!creds.session_token.empty())
    req.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  SigV4Input in{req.method, url.path, url.query, req.headers, req.body};
  std::vector<std::string> names;
  for (const std::string& n : AllHeaderNames(in))
    if (n == "host" || n == "content-type" || n.starts_with("x-amz-")) names.push_back(n);
  GPU_ASSIGN_OR_RETURN(std::string authz, SignSigV4(in, names, creds, scope));
  req.headers.emplace_back("Authorization", std::move(authz));
  return Status::Ok();
}

}  // namespace gpu_autoscaler::cloud
