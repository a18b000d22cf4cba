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

        /// <summary>
        /// Where the daemon writes it by default: $XDG_CONFIG_HOME/convai-bridge/connection.json, else
        /// ~/.config/convai-bridge/connection.json (the same rule on Windows, macOS and Linux).
        /// </summary>
        public static string DefaultPath()
        {
            string root = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
            if (string.IsNullOrEmpty(root))
            {
                string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
                if (string.IsNullOrEmpty(home)) home = Environment.GetEnvironmentVariable("HOME") ?? ".";
                root = System.IO.Path.Combine(home, ".config");
            }
            return System.IO.Path.Combine(System.IO.Path.Combine(root, "convai-bridge"), "connection.json");
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
