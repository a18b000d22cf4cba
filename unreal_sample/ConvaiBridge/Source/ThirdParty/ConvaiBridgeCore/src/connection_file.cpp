// connection.json: where the daemon listens and the token proving we may use it, and where to find
// it (the one rule every client shares: PROTOCOL.md section 1).
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "convai_bridge/client.h"
#include "json_lite.h"
#include "utf16.h"

#if defined(_WIN32)
#include <filesystem>
#endif

namespace cvb {
namespace {

std::optional<std::string> ProcessEnv(const char* name) {
#if defined(_WIN32)
  // Wide API: the ANSI copy of the environment loses every character outside the code page.
  const std::u16string wide_name = detail::Utf8ToUtf16(name);
  wchar_t* value = nullptr;
  size_t length = 0;
  if (_wdupenv_s(&value, &length, reinterpret_cast<const wchar_t*>(wide_name.c_str())) != 0 || value == nullptr)
    return std::nullopt;
  std::string out = detail::Utf16ToUtf8(std::u16string(reinterpret_cast<const char16_t*>(value)));
  std::free(value);
  return out;
#else
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
#endif
}

bool IsAbsolute(const std::string& path, PathStyle style) {
  if (style == PathStyle::Posix) return !path.empty() && path[0] == '/';
  auto slash = [](char c) { return c == '\\' || c == '/'; };
  const bool drive = path.size() >= 3 && ((path[0] >= 'A' && path[0] <= 'Z') || (path[0] >= 'a' && path[0] <= 'z')) &&
                     path[1] == ':' && slash(path[2]);
  const bool unc = path.size() >= 2 && slash(path[0]) && slash(path[1]);
  return drive || unc;
}

std::string Join(std::string base, const char* leaf, PathStyle style) {
  const char separator = style == PathStyle::Windows ? '\\' : '/';
  while (base.size() > 1 && (base.back() == separator || (style == PathStyle::Windows && base.back() == '/')))
    base.pop_back();
  return base + separator + leaf;
}

std::ifstream OpenUtf8(const std::string& path) {
#if defined(_WIN32)
  // A path built from UTF-16 opens with the wide API; a narrow one would go through the ANSI code page.
  return std::ifstream(std::filesystem::path(detail::Utf8ToUtf16(path)), std::ios::binary);
#else
  return std::ifstream(path, std::ios::binary);
#endif
}

}  // namespace

std::string ResolveConnectionFilePath(const EnvLookup& env, PathStyle style) {
  auto get = [&env](const char* name) { return env ? env(name).value_or(std::string()) : std::string(); };
  if (std::string explicit_path = get("CONVAI_BRIDGE_CONNECTION_FILE"); !explicit_path.empty()) return explicit_path;
  std::string base = get("XDG_CONFIG_HOME");
  if (base.empty() || !IsAbsolute(base, style)) {  // a relative XDG_CONFIG_HOME is ignored (XDG spec)
    base = style == PathStyle::Windows ? get("APPDATA") : std::string();
    if (base.empty()) {
      const std::string home = get(style == PathStyle::Windows ? "USERPROFILE" : "HOME");
      base = Join(home.empty() ? std::string(".") : home, ".config", style);
    }
  }
  return Join(Join(base, "convai-bridge", style), "connection.json", style);
}

std::string DefaultConnectionFilePath() { return ResolveConnectionFilePath(ProcessEnv, kNativePathStyle); }

bool ReadConnectionFile(const std::string& path, ConnectionInfo* out, std::string* error) {
  std::ifstream in = OpenUtf8(path);
  if (!in) {
    if (error) *error = "no connection file at " + path;
    return false;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Value doc;
  std::string why;
  if (!detail::ParseJson(text, &doc, &why) || !doc.IsMap()) {
    if (error) *error = "connection file " + path + " is not a JSON object" + (why.empty() ? "" : ": " + why);
    return false;
  }
  const Value* endpoint = doc.Find("endpoint");
  const Value* token = doc.Find("token");
  if (!endpoint || !endpoint->IsStr() || endpoint->AsStr().empty() || !token || !token->IsStr()) {
    if (error) *error = "connection file " + path + " lacks endpoint or token";
    return false;
  }
  ConnectionInfo info;
  info.endpoint = endpoint->AsStr();
  info.token = token->AsStr();
  if (const Value* id = doc.Find("instance_id"); id && id->IsStr()) info.instance_id = id->AsStr();
  if (const Value* pid = doc.Find("pid"); pid && pid->IsNumber()) info.pid = pid->AsInt();
  *out = std::move(info);
  return true;
}

}  // namespace cvb
