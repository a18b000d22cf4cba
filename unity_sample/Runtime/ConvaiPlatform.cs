namespace ConvaiBridge.Unity
{
    /// <summary>
    /// What this build target can do. The package compiles on every platform (so game code that names its
    /// components builds everywhere), but the daemon is a desktop sidecar: on other targets the components
    /// say so once at run time instead of failing in obscure ways.
    /// </summary>
    public static class ConvaiPlatform
    {
        /// <summary>Desktop Editor or player: the supported setup (daemon on the same machine).</summary>
        public static bool IsDesktop
        {
            get
            {
#if UNITY_EDITOR || UNITY_STANDALONE
                return true;
#else
                return false;
#endif
            }
        }

        /// <summary>A TCP socket to the daemon is possible (not in a browser: WebGL has no sockets).</summary>
        public static bool CanReachDaemon
        {
            get
            {
#if UNITY_WEBGL && !UNITY_EDITOR
                return false;
#else
                return true;
#endif
            }
        }

        /// <summary>UnityEngine.Microphone exists (it does not when the build target is WebGL, Editor included).</summary>
        public static bool HasMicrophone
        {
            get
            {
#if UNITY_WEBGL
                return false;
#else
                return true;
#endif
            }
        }

        /// <summary>OnAudioFilterRead runs (not in WebGL players), which streamed voice playback needs.</summary>
        public static bool HasStreamedPlayback { get { return CanReachDaemon; } }

        /// <summary>One sentence on what does not work here, or null on a supported desktop target.</summary>
        public static string Limitation
        {
            get
            {
                if (!CanReachDaemon)
                    return "WebGL is not supported: a browser cannot open a socket to the convai-bridge daemon, "
                           + "has no UnityEngine.Microphone and does not run OnAudioFilterRead (no voice, no push-to-talk)";
#if UNITY_WEBGL
                if (!HasMicrophone)
                    return "build target WebGL: UnityEngine.Microphone does not exist, push-to-talk is off "
                           + "(the Editor still reaches the daemon; a WebGL player will not)";
#endif
                if (!IsDesktop)
                    return "this platform is not supported: the convai-bridge daemon runs only beside a desktop game "
                           + "(Editor, Windows, macOS, Linux); a daemon elsewhere is reachable only with an explicit endpoint";
                return null;
            }
        }
    }
}
