// Where the core looks for connection.json: the one rule the daemon (bridge/config.py), the C# core
// and this core share (PROTOCOL.md section 1). The same table as tests/daemon/test_connection_path.py,
// on both OS flavours (the Windows branch through PathStyle::Windows, since Windows cannot run here),
// then the real process environment, then a real connection: a client with no path finds the
// running daemon's file through $CONVAI_BRIDGE_CONNECTION_FILE and through $XDG_CONFIG_HOME.
//
//   connection_path_test [<connection file of a running daemon>]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "convai_bridge/client.h"
#include "test_support.h"
#include "utf16.h"

namespace {

using Env = std::map<std::string, std::string>;

std::string Resolve(const Env& env, cvb::PathStyle style) {
  return cvb::ResolveConnectionFilePath(
      [&env](const char* name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      style);
}

struct Case {
  Env env;
  std::string expected;
};

void PosixRule() {
  const std::vector<Case> cases = {
      {{{"HOME", "/home/ada"}}, "/home/ada/.config/convai-bridge/connection.json"},
      {{{"HOME", "/home/ada"}, {"XDG_CONFIG_HOME", "/xdg"}}, "/xdg/convai-bridge/connection.json"},
      {{{"HOME", "/home/ada"}, {"XDG_CONFIG_HOME", "/xdg/"}}, "/xdg/convai-bridge/connection.json"},
      {{{"HOME", "/home/ada"}, {"XDG_CONFIG_HOME", "rel/xdg"}}, "/home/ada/.config/convai-bridge/connection.json"},
      {{{"HOME", "/home/ada"}, {"XDG_CONFIG_HOME", ""}}, "/home/ada/.config/convai-bridge/connection.json"},
      {{{"HOME", "/home/ada"}, {"XDG_CONFIG_HOME", "/xdg"}, {"CONVAI_BRIDGE_CONNECTION_FILE", "/run/c.json"}},
       "/run/c.json"},
      {{{"HOME", "/home/ada"}, {"CONVAI_BRIDGE_CONNECTION_FILE", ""}}, "/home/ada/.config/convai-bridge/connection.json"},
      {{{"HOME", "/home/ada"}, {"APPDATA", "/appdata"}}, "/home/ada/.config/convai-bridge/connection.json"},
  };
  for (const Case& c : cases) {
    const std::string got = Resolve(c.env, cvb::PathStyle::Posix);
    EXPECT_MSG(got == c.expected, got + " != " + c.expected);
  }
}

void WindowsRule() {
  const std::vector<Case> cases = {
      {{{"APPDATA", "C:\\Users\\ada\\Roaming"}}, "C:\\Users\\ada\\Roaming\\convai-bridge\\connection.json"},
      {{{"APPDATA", "C:\\Roaming"}, {"XDG_CONFIG_HOME", "D:\\xdg"}}, "D:\\xdg\\convai-bridge\\connection.json"},
      {{{"APPDATA", "C:\\Roaming"}, {"XDG_CONFIG_HOME", "\\\\srv\\share"}}, "\\\\srv\\share\\convai-bridge\\connection.json"},
      {{{"APPDATA", "C:\\Roaming"}, {"XDG_CONFIG_HOME", "xdg"}}, "C:\\Roaming\\convai-bridge\\connection.json"},
      {{{"APPDATA", "C:\\Roaming"}, {"CONVAI_BRIDGE_CONNECTION_FILE", "E:\\c.json"}}, "E:\\c.json"},
      {{{"USERPROFILE", "C:\\Users\\ada"}}, "C:\\Users\\ada\\.config\\convai-bridge\\connection.json"},
      // HOME is not the Windows home; a user name outside ASCII survives (UTF-8 in, UTF-8 out)
      {{{"HOME", "/home/ada"}, {"APPDATA", "C:\\Users\\Jos\xc3\xa9\\Roaming"}},
       "C:\\Users\\Jos\xc3\xa9\\Roaming\\convai-bridge\\connection.json"},
  };
  for (const Case& c : cases) {
    const std::string got = Resolve(c.env, cvb::PathStyle::Windows);
    EXPECT_MSG(got == c.expected, got + " != " + c.expected);
  }
}

void Utf16RoundTrip() {
  // What the Windows branch does with %APPDATA% (wide API) and the path it opens.
  const std::string text = "C:\\Users\\Jos\xc3\xa9\\\xe6\x97\xa5\xe6\x9c\xac\\\xf0\x9f\x98\x80";
  const std::u16string wide = cvb::detail::Utf8ToUtf16(text);
  EXPECT(wide.size() == 19);  // 14 ASCII + e-acute + 2 CJK + a surrogate pair
  EXPECT(wide[12] == 0x00E9 && wide[17] == 0xD83D && wide[18] == 0xDE00);
  EXPECT(cvb::detail::Utf16ToUtf8(wide) == text);
  EXPECT(cvb::detail::Utf8ToUtf16("a\xff" "b") == std::u16string(u"a\uFFFDb"));  // bad byte: U+FFFD
  EXPECT(cvb::detail::Utf16ToUtf8(std::u16string(1, static_cast<char16_t>(0xD800))) == "\xef\xbf\xbd");
}

void Setenv(const char* name, const char* value) {
  if (value)
    ::setenv(name, value, 1);
  else
    ::unsetenv(name);
}

void ProcessEnvironment() {
  Setenv("CONVAI_BRIDGE_CONNECTION_FILE", nullptr);
  Setenv("XDG_CONFIG_HOME", nullptr);
  Setenv("HOME", "/home/ada");
  EXPECT(cvb::DefaultConnectionFilePath() == "/home/ada/.config/convai-bridge/connection.json");
  Setenv("XDG_CONFIG_HOME", "relative");
  EXPECT(cvb::DefaultConnectionFilePath() == "/home/ada/.config/convai-bridge/connection.json");
  Setenv("XDG_CONFIG_HOME", "/xdg");
  EXPECT(cvb::DefaultConnectionFilePath() == "/xdg/convai-bridge/connection.json");
  Setenv("CONVAI_BRIDGE_CONNECTION_FILE", "");
  EXPECT(cvb::DefaultConnectionFilePath() == "/xdg/convai-bridge/connection.json");
  Setenv("CONVAI_BRIDGE_CONNECTION_FILE", "/run/bridge.json");
  EXPECT(cvb::DefaultConnectionFilePath() == "/run/bridge.json");
  cvb::ClientOptions options;  // an empty connection_file means the default rule
  EXPECT(options.connection_file.empty());
}

// A client with default options reaches the daemon whose connection file the rule points at.
bool ConnectsByDefault() {
  cvb::ClientOptions options;
  options.engine = "unreal-path-test";
  cvb::Client client(options);
  client.Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (client.State() != cvb::ConnectionState::Ready && std::chrono::steady_clock::now() < deadline) {
    client.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool ready = client.State() == cvb::ConnectionState::Ready;
  client.Stop();
  return ready;
}

void RealDaemon(const std::string& daemon_file) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(daemon_file).parent_path() / "path-test";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir / "xdg" / "convai-bridge");
  fs::copy_file(daemon_file, dir / "xdg" / "convai-bridge" / "connection.json");

  Setenv("HOME", (dir / "home").string().c_str());  // nothing there: only the rule can find the file
  Setenv("XDG_CONFIG_HOME", nullptr);
  Setenv("CONVAI_BRIDGE_CONNECTION_FILE", daemon_file.c_str());
  EXPECT_MSG(ConnectsByDefault(), "via CONVAI_BRIDGE_CONNECTION_FILE");

  Setenv("CONVAI_BRIDGE_CONNECTION_FILE", "");
  Setenv("XDG_CONFIG_HOME", (dir / "xdg").string().c_str());
  EXPECT_MSG(ConnectsByDefault(), "via XDG_CONFIG_HOME");
  fs::remove_all(dir, ec);
}

}  // namespace

int main(int argc, char** argv) {
  PosixRule();
  WindowsRule();
  Utf16RoundTrip();
  ProcessEnvironment();
  if (argc > 1) RealDaemon(argv[1]);
  return cvbtest::Finish("connection_path_test");
}
