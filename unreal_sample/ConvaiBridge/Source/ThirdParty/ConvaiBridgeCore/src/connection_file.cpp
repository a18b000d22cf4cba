// connection.json: where the daemon listens and the token proving we may use it.
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "convai_bridge/client.h"
#include "json_lite.h"

namespace cvb {
namespace {

std::string Env(const char* name) {
#if defined(_WIN32)
  char* value = nullptr;
  size_t length = 0;
  if (_dupenv_s(&value, &length, name) != 0 || value == nullptr) return std::string();
  std::string out(value);
  std::free(value);
  return out;
#else
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
#endif
}

}  // namespace

std::string DefaultConnectionFilePath() {
#if defined(_WIN32)
  const std::string appdata = Env("APPDATA");
  return (appdata.empty() ? std::string(".") : appdata) + "\\convai-bridge\\connection.json";
#else
  const std::string xdg = Env("XDG_CONFIG_HOME");
  if (!xdg.empty()) return xdg + "/convai-bridge/connection.json";
  const std::string home = Env("HOME");
  return (home.empty() ? std::string(".") : home) + "/.config/convai-bridge/connection.json";
#endif
}

bool ReadConnectionFile(const std::string& path, ConnectionInfo* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
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
