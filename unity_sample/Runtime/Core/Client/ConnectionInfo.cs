using System;
using System.IO;
using ConvaiBridge.MsgPack;
using ConvaiBridge.Protocol;

namespace ConvaiBridge.Client
{
    /// <summary>
    /// The daemon's connection file: {"endpoint", "token", "pid", "instance_id"}. Re-read on every
    /// reconnect, because a restarted daemon writes a new token and instance id.
    /// </summary>
    public sealed class ConnectionInfo
    {
        public string Endpoint;
        public string Token;
        public long Pid;
        public string InstanceId;
        /// <summary>Where it was read from (null when built by hand).</summary>
        public string Path;

        public const string DefaultEndpoint = "tcp://127.0.0.1:7300";

        public ConnectionInfo() { }

        public ConnectionInfo(string endpoint, string token)
        {
            Endpoint = endpoint;
            Token = token;
        }

        /// <summary>Environment variable naming the connection file outright (rule 1).</summary>
        public const string PathVariable = "CONVAI_BRIDGE_CONNECTION_FILE";

        /// <summary>
        /// Where the daemon writes it by default, the same rule for the daemon and the C# and C++ clients:
        /// (1) $CONVAI_BRIDGE_CONNECTION_FILE when set and non-empty (a full path);
        /// (2) $XDG_CONFIG_HOME/convai-bridge/connection.json when XDG_CONFIG_HOME is an absolute path;
        /// (3) on Windows %APPDATA%\convai-bridge\connection.json;
        /// (4) otherwise ~/.config/convai-bridge/connection.json.
        /// </summary>
        public static string DefaultPath()
        {
            return DefaultPath(Environment.GetEnvironmentVariable, System.IO.Path.DirectorySeparatorChar == '\\', HomeDirectory());
        }

        /// <summary>
        /// The rule with its inputs passed in (the OS, the environment, the home directory), so every branch,
        /// Windows included, can be checked on any machine. Paths are joined with the given OS's separator.
        /// </summary>
        public static string DefaultPath(Func<string, string> getEnv, bool windows, string home)
        {
            string explicitPath = getEnv(PathVariable);
            if (!string.IsNullOrEmpty(explicitPath)) return explicitPath;
            string xdg = getEnv("XDG_CONFIG_HOME");
            if (!string.IsNullOrEmpty(xdg) && IsAbsolute(xdg, windows)) return Join(windows, xdg, "convai-bridge", "connection.json");
            if (windows)
            {
                string appData = getEnv("APPDATA");
                if (!string.IsNullOrEmpty(appData)) return Join(true, appData, "convai-bridge", "connection.json");
            }
            if (string.IsNullOrEmpty(home)) home = getEnv(windows ? "USERPROFILE" : "HOME");
            if (string.IsNullOrEmpty(home)) home = ".";
            return Join(windows, home, ".config", "convai-bridge", "connection.json");
        }

        /// <summary>
        /// Absolute on that OS: "/..." on POSIX; "C:\..." / "C:/..." or a UNC path ("\\server\share") on
        /// Windows (a drive-relative "\dir" or "C:dir" is not).
        /// </summary>
        public static bool IsAbsolute(string path, bool windows)
        {
            if (string.IsNullOrEmpty(path)) return false;
            if (!windows) return path[0] == '/';
            if (path.Length >= 3 && char.IsLetter(path[0]) && path[1] == ':' && (path[2] == '\\' || path[2] == '/')) return true;
            return path.Length >= 2 && (path[0] == '\\' || path[0] == '/') && path[1] == path[0];
        }

        private static string Join(bool windows, string root, params string[] parts)
        {
            char sep = windows ? '\\' : '/';
            var sb = new System.Text.StringBuilder(root.TrimEnd('/', sep));
            if (sb.Length == 0) sb.Append(sep); // root was "/"
            foreach (var part in parts)
            {
                if (sb[sb.Length - 1] != sep) sb.Append(sep);
                sb.Append(part);
            }
            return sb.ToString();
        }

        private static string HomeDirectory()
        {
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return string.IsNullOrEmpty(home) ? null : home;
        }

        /// <summary>Parse the file; throws IOException / FormatException with a readable message.</summary>
        public static ConnectionInfo Load(string path)
        {
            string text = File.ReadAllText(path);
            var info = Parse(text);
            info.Path = path;
            return info;
        }

        public static bool TryLoad(string path, out ConnectionInfo info, out string error)
        {
            info = null;
            error = null;
            try
            {
                info = Load(path);
                return true;
            }
            catch (Exception e)
            {
                error = e.GetType().Name + ": " + e.Message;
                return false;
            }
        }

        public static ConnectionInfo Parse(string json)
        {
            var map = Json.Parse(json) as MsgMap;
            if (map == null) throw new FormatException("connection file is not a JSON object");
            var info = new ConnectionInfo
            {
                Endpoint = map.Get("endpoint") as string,
                Token = map.Get("token") as string,
                InstanceId = map.Get("instance_id") as string,
            };
            object pid = map.Get("pid");
            if (pid is long) info.Pid = (long)pid;
            if (string.IsNullOrEmpty(info.Endpoint)) throw new FormatException("connection file has no endpoint");
            if (info.Token == null) throw new FormatException("connection file has no token");
            return info;
        }
    }
}
