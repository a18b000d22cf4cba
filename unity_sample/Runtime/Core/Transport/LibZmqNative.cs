using System;
using System.Runtime.InteropServices;

namespace ConvaiBridge.Transport
{
    /// <summary>
    /// The handful of libzmq C functions the DEALER transport needs. DllImport names must be constants,
    /// so each library file name gets its own small binding and ZmqLibrary picks the first that loads:
    /// "libzmq" (libzmq.dll on Windows, libzmq.so / libzmq.dylib elsewhere) and then "libzmq.so.5"
    /// (Linux machines with the runtime package but no -dev symlink).
    /// </summary>
    internal interface IZmqApi
    {
        void Version(out int major, out int minor, out int patch);
        IntPtr CtxNew();
        int CtxTerm(IntPtr context);
        IntPtr Socket(IntPtr context, int type);
        int Close(IntPtr socket);
        int SetSockOpt(IntPtr socket, int option, ref int value, UIntPtr size);
        int Connect(IntPtr socket, string endpoint);
        int Send(IntPtr socket, byte[] buffer, UIntPtr length, int flags);
        int MsgInit(IntPtr msg);
        int MsgRecv(IntPtr msg, IntPtr socket, int flags);
        IntPtr MsgData(IntPtr msg);
        UIntPtr MsgSize(IntPtr msg);
        int MsgMore(IntPtr msg);
        int MsgClose(IntPtr msg);
        int Errno();
        IntPtr StrError(int errnum);
    }

    internal static class ZmqConst
    {
        public const int Dealer = 5;
        public const int SndMore = 2;
        public const int DontWait = 1;
        public const int Linger = 17;
        public const int SndHwm = 23;
        public const int RcvHwm = 24;
        public const int RcvTimeo = 27;
        public const int MaxMsgSize = 22;
        public const int ReconnectIvl = 18;
        public const int ReconnectIvlMax = 21;
        public const int EIntr = 4;
        public const int ETerm = 156384712 + 53;
        /// <summary>zmq_msg_t is an opaque 64-byte struct.</summary>
        public const int MsgSize = 64;
    }

    internal static class ZmqLibrary
    {
        private static IZmqApi _api;
        private static string _error;
        private static readonly object Lock = new object();

        /// <summary>The loaded binding, or null with a reason (library missing, wrong architecture).</summary>
        public static IZmqApi Load(out string error)
        {
            lock (Lock)
            {
                if (_api == null && _error == null)
                {
#if UNITY_WEBGL && !UNITY_EDITOR
                    // No native plugins or sockets in a browser; no DllImport is even compiled in.
                    var candidates = new Func<IZmqApi>[0];
                    _error = "libzmq is not available on WebGL (a browser cannot open a socket to the daemon)";
#else
                    var candidates = new Func<IZmqApi>[] { () => new ZmqApiLibzmq(), () => new ZmqApiSo5() };
#endif
                    var reasons = new System.Text.StringBuilder();
                    foreach (var make in candidates)
                    {
                        try
                        {
                            var api = make();
                            int major, minor, patch;
                            api.Version(out major, out minor, out patch);
                            if (major < 4) throw new NotSupportedException("libzmq " + major + "." + minor + " is too old (need 4.x)");
                            _api = api;
                            break;
                        }
                        catch (Exception e)
                        {
                            if (e is DllNotFoundException || e is EntryPointNotFoundException || e is BadImageFormatException || e is NotSupportedException)
                                reasons.Append(e.GetType().Name).Append(": ").Append(e.Message).Append("; ");
                            else throw;
                        }
                    }
                    if (_api == null && _error == null) _error = "libzmq not found (" + reasons.ToString().TrimEnd(' ', ';') + ")";
                }
                error = _error;
                return _api;
            }
        }
    }

#if !(UNITY_WEBGL && !UNITY_EDITOR)
    internal sealed class ZmqApiLibzmq : IZmqApi
    {
        private const string Lib = "libzmq";
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern void zmq_version(out int major, out int minor, out int patch);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_ctx_new();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_ctx_term(IntPtr context);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_socket(IntPtr context, int type);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_close(IntPtr socket);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_setsockopt(IntPtr socket, int option, ref int value, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Ansi)] private static extern int zmq_connect(IntPtr socket, string endpoint);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_send(IntPtr socket, byte[] buffer, UIntPtr length, int flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_init(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_recv(IntPtr msg, IntPtr socket, int flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_msg_data(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern UIntPtr zmq_msg_size(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_more(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_close(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_errno();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_strerror(int errnum);

        public void Version(out int major, out int minor, out int patch) { zmq_version(out major, out minor, out patch); }
        public IntPtr CtxNew() { return zmq_ctx_new(); }
        public int CtxTerm(IntPtr context) { return zmq_ctx_term(context); }
        public IntPtr Socket(IntPtr context, int type) { return zmq_socket(context, type); }
        public int Close(IntPtr socket) { return zmq_close(socket); }
        public int SetSockOpt(IntPtr socket, int option, ref int value, UIntPtr size) { return zmq_setsockopt(socket, option, ref value, size); }
        public int Connect(IntPtr socket, string endpoint) { return zmq_connect(socket, endpoint); }
        public int Send(IntPtr socket, byte[] buffer, UIntPtr length, int flags) { return zmq_send(socket, buffer, length, flags); }
        public int MsgInit(IntPtr msg) { return zmq_msg_init(msg); }
        public int MsgRecv(IntPtr msg, IntPtr socket, int flags) { return zmq_msg_recv(msg, socket, flags); }
        public IntPtr MsgData(IntPtr msg) { return zmq_msg_data(msg); }
        public UIntPtr MsgSize(IntPtr msg) { return zmq_msg_size(msg); }
        public int MsgMore(IntPtr msg) { return zmq_msg_more(msg); }
        public int MsgClose(IntPtr msg) { return zmq_msg_close(msg); }
        public int Errno() { return zmq_errno(); }
        public IntPtr StrError(int errnum) { return zmq_strerror(errnum); }
    }

    internal sealed class ZmqApiSo5 : IZmqApi
    {
        private const string Lib = "libzmq.so.5";
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern void zmq_version(out int major, out int minor, out int patch);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_ctx_new();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_ctx_term(IntPtr context);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_socket(IntPtr context, int type);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_close(IntPtr socket);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_setsockopt(IntPtr socket, int option, ref int value, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, CharSet = CharSet.Ansi)] private static extern int zmq_connect(IntPtr socket, string endpoint);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_send(IntPtr socket, byte[] buffer, UIntPtr length, int flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_init(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_recv(IntPtr msg, IntPtr socket, int flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_msg_data(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern UIntPtr zmq_msg_size(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_more(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_msg_close(IntPtr msg);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern int zmq_errno();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] private static extern IntPtr zmq_strerror(int errnum);

        public void Version(out int major, out int minor, out int patch) { zmq_version(out major, out minor, out patch); }
        public IntPtr CtxNew() { return zmq_ctx_new(); }
        public int CtxTerm(IntPtr context) { return zmq_ctx_term(context); }
        public IntPtr Socket(IntPtr context, int type) { return zmq_socket(context, type); }
        public int Close(IntPtr socket) { return zmq_close(socket); }
        public int SetSockOpt(IntPtr socket, int option, ref int value, UIntPtr size) { return zmq_setsockopt(socket, option, ref value, size); }
        public int Connect(IntPtr socket, string endpoint) { return zmq_connect(socket, endpoint); }
        public int Send(IntPtr socket, byte[] buffer, UIntPtr length, int flags) { return zmq_send(socket, buffer, length, flags); }
        public int MsgInit(IntPtr msg) { return zmq_msg_init(msg); }
        public int MsgRecv(IntPtr msg, IntPtr socket, int flags) { return zmq_msg_recv(msg, socket, flags); }
        public IntPtr MsgData(IntPtr msg) { return zmq_msg_data(msg); }
        public UIntPtr MsgSize(IntPtr msg) { return zmq_msg_size(msg); }
        public int MsgMore(IntPtr msg) { return zmq_msg_more(msg); }
        public int MsgClose(IntPtr msg) { return zmq_msg_close(msg); }
        public int Errno() { return zmq_errno(); }
        public IntPtr StrError(int errnum) { return zmq_strerror(errnum); }
    }
#endif
}
