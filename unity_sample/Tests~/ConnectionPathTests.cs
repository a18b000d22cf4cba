using System;
using System.Collections.Generic;
using ConvaiBridge.Client;

namespace ConvaiBridge.Tests
{
    /// <summary>
    /// The connection-file rule shared by the daemon and both engine clients, every branch in order,
    /// Windows included (through the OS/environment seam: Windows cannot run here).
    /// </summary>
    public static class ConnectionPathTests
    {
        private static Func<string, string> Env(params string[] pairs)
        {
            var d = new Dictionary<string, string>();
            for (int i = 0; i + 1 < pairs.Length; i += 2) d[pairs[i]] = pairs[i + 1];
            return k => { string v; return d.TryGetValue(k, out v) ? v : null; };
        }

        [Test]
        public static void ExplicitVariableWinsOnEveryOs()
        {
            var env = Env("CONVAI_BRIDGE_CONNECTION_FILE", "/srv/cb/conn.json", "XDG_CONFIG_HOME", "/x", "APPDATA", @"C:\AD");
            Assert.Equal("/srv/cb/conn.json", ConnectionInfo.DefaultPath(env, false, "/home/u"), "linux");
            Assert.Equal("/srv/cb/conn.json", ConnectionInfo.DefaultPath(env, true, @"C:\Users\u"), "windows");
            // Empty counts as unset: the next rule applies.
            var empty = Env("CONVAI_BRIDGE_CONNECTION_FILE", "", "XDG_CONFIG_HOME", "/x");
            Assert.Equal("/x/convai-bridge/connection.json", ConnectionInfo.DefaultPath(empty, false, "/home/u"), "empty variable");
        }

        [Test]
        public static void XdgConfigHomeWhenAbsoluteOnEveryOs()
        {
            Assert.Equal("/xdg/convai-bridge/connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", "/xdg/"), false, "/home/u"), "linux, trailing slash");
            Assert.Equal(@"D:\cfg\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", @"D:\cfg", "APPDATA", @"C:\AD"), true, @"C:\Users\u"), "windows drive path beats APPDATA");
            Assert.Equal(@"\\srv\share\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", @"\\srv\share"), true, @"C:\Users\u"), "windows UNC");
            // Relative (or drive-relative) values are ignored, as the XDG spec says.
            Assert.Equal("/home/u/.config/convai-bridge/connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", "rel/dir"), false, "/home/u"), "linux relative ignored");
            Assert.Equal(@"C:\AD\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", @"\cfg", "APPDATA", @"C:\AD"), true, @"C:\Users\u"), "windows rooted-only ignored");
            Assert.Equal(@"C:\AD\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", "cfg", "APPDATA", @"C:\AD"), true, @"C:\Users\u"), "windows relative ignored");
            Assert.Equal("/home/u/.config/convai-bridge/connection.json",
                ConnectionInfo.DefaultPath(Env("XDG_CONFIG_HOME", @"C:\cfg"), false, "/home/u"), "a drive path is not absolute on POSIX");
        }

        [Test]
        public static void WindowsUsesAppDataThenHome()
        {
            Assert.Equal(@"C:\Users\u\AppData\Roaming\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env("APPDATA", @"C:\Users\u\AppData\Roaming\"), true, @"C:\Users\u"), "APPDATA");
            Assert.Equal(@"C:\Users\u\.config\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env(), true, @"C:\Users\u"), "no APPDATA: the home rule");
            Assert.Equal(@"C:\Users\v\.config\convai-bridge\connection.json",
                ConnectionInfo.DefaultPath(Env("USERPROFILE", @"C:\Users\v"), true, null), "home from USERPROFILE");
        }

        [Test]
        public static void PosixUsesHomeConfigAndIgnoresAppData()
        {
            Assert.Equal("/Users/u/.config/convai-bridge/connection.json",
                ConnectionInfo.DefaultPath(Env("APPDATA", "/appdata"), false, "/Users/u"), "macOS / Linux");
            Assert.Equal("/home/w/.config/convai-bridge/connection.json",
                ConnectionInfo.DefaultPath(Env("HOME", "/home/w"), false, null), "home from HOME");
            Assert.Equal("/.config/convai-bridge/connection.json",
                ConnectionInfo.DefaultPath(Env(), false, "/"), "home is /");
        }

        [Test]
        public static void TheProcessEnvironmentIsWhatDefaultPathReads()
        {
            string savedFile = Environment.GetEnvironmentVariable(ConnectionInfo.PathVariable);
            string savedXdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
            try
            {
                Environment.SetEnvironmentVariable(ConnectionInfo.PathVariable, "/tmp/cb-explicit.json");
                Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", "/tmp/xdg-test");
                Assert.Equal("/tmp/cb-explicit.json", ConnectionInfo.DefaultPath(), "explicit");
                Environment.SetEnvironmentVariable(ConnectionInfo.PathVariable, null);
                Assert.Equal("/tmp/xdg-test/convai-bridge/connection.json", ConnectionInfo.DefaultPath(), "XDG_CONFIG_HOME");
                Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", null);
                string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
                Assert.Equal(home.TrimEnd('/') + "/.config/convai-bridge/connection.json", ConnectionInfo.DefaultPath(), "~/.config");
            }
            finally
            {
                Environment.SetEnvironmentVariable(ConnectionInfo.PathVariable, savedFile);
                Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", savedXdg);
            }
        }
    }
}
