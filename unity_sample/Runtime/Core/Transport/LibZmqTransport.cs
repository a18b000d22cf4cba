using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace ConvaiBridge.Transport
{
    /// <summary>
    /// DEALER transport over the native libzmq (4.x) through P/Invoke. Used by the CI tests and usable in
    /// Unity on desktop when libzmq ships as a native plugin. Linger is 0 so closing never blocks (the
    /// editor must not freeze when play mode stops).
    /// </summary>
    public sealed class LibZmqTransport : IBridgeTransport
    {
        private readonly IZmqApi _zmq;
        private IntPtr _context;
        private IntPtr _socket;
        private IntPtr _msg;
        private int _rcvTimeout = -2;
        private readonly string _name;

        /// <summary>Bytes a message may have before the local socket drops it (0 or less: unlimited).</summary>
        public int MaxMessageBytes = 0;
        /// <summary>Outgoing messages queued per socket before TrySend reports "would block".</summary>
        public int SendHighWaterMark = 1000;
        public int ReceiveHighWaterMark = 10000;

        /// <summary>Throws DllNotFoundException with the probed names when libzmq cannot be loaded.</summary>
        public LibZmqTransport()
        {
            string error;
            _zmq = ZmqLibrary.Load(out error);
            if (_zmq == null) throw new DllNotFoundException(error);
            int major, minor, patch;
            _zmq.Version(out major, out minor, out patch);
            _name = "libzmq " + major + "." + minor + "." + patch;
            _context = _zmq.CtxNew();
            if (_context == IntPtr.Zero) throw new InvalidOperationException("zmq_ctx_new failed: " + LastError());
            _msg = Marshal.AllocHGlobal(ZmqConst.MsgSize);
        }

        /// <summary>True when libzmq can be loaded on this machine (reason otherwise).</summary>
        public static bool IsAvailable(out string reason)
        {
            var api = ZmqLibrary.Load(out reason);
            return api != null;
        }

        public string Name { get { return _name; } }

        private string LastError()
        {
            int e = _zmq.Errno();
            IntPtr p = _zmq.StrError(e);
            return (p == IntPtr.Zero ? "error" : Marshal.PtrToStringAnsi(p)) + " (" + e + ")";
        }

        private void SetOpt(int option, int value)
        {
            if (_zmq.SetSockOpt(_socket, option, ref value, (UIntPtr)sizeof(int)) != 0)
                throw new InvalidOperationException("zmq_setsockopt(" + option + ") failed: " + LastError());
        }

        public void Open(string endpoint)
        {
            if (_context == IntPtr.Zero) throw new ObjectDisposedException("LibZmqTransport");
            Close();
            _socket = _zmq.Socket(_context, ZmqConst.Dealer);
            if (_socket == IntPtr.Zero) throw new InvalidOperationException("zmq_socket failed: " + LastError());
            _rcvTimeout = -2;
            SetOpt(ZmqConst.Linger, 0);
            SetOpt(ZmqConst.SndHwm, SendHighWaterMark);
            SetOpt(ZmqConst.RcvHwm, ReceiveHighWaterMark);
            SetOpt(ZmqConst.ReconnectIvl, 100);
            SetOpt(ZmqConst.ReconnectIvlMax, 1000);
            if (MaxMessageBytes > 0) SetOpt(ZmqConst.MaxMsgSize, MaxMessageBytes);
            if (_zmq.Connect(_socket, endpoint) != 0)
            {
                string err = LastError();
                Close();
                throw new ArgumentException("zmq_connect(" + endpoint + ") failed: " + err);
            }
        }

        public void Close()
        {
            if (_socket == IntPtr.Zero) return;
            _zmq.Close(_socket);
            _socket = IntPtr.Zero;
        }

        public bool TrySend(IList<byte[]> parts)
        {
            if (_socket == IntPtr.Zero || parts.Count == 0) return false;
            for (int i = 0; i < parts.Count; i++)
            {
                int flags = ZmqConst.DontWait | (i < parts.Count - 1 ? ZmqConst.SndMore : 0);
                var data = parts[i] ?? new byte[0];
                if (_zmq.Send(_socket, data, (UIntPtr)data.Length, flags) < 0)
                {
                    // Only the first part can hit the high-water mark; later parts of an accepted message don't.
                    return false;
                }
            }
            return true;
        }

        public bool TryReceive(List<byte[]> parts, int timeoutMs)
        {
            parts.Clear();
            if (_socket == IntPtr.Zero) return false;
            // A zero timeout is a non-blocking receive; otherwise the socket's receive timeout waits.
            int flags = timeoutMs <= 0 ? ZmqConst.DontWait : 0;
            if (flags == 0 && timeoutMs != _rcvTimeout)
            {
                SetOpt(ZmqConst.RcvTimeo, timeoutMs);
                _rcvTimeout = timeoutMs;
            }
            while (true)
            {
                _zmq.MsgInit(_msg);
                int rc = _zmq.MsgRecv(_msg, _socket, flags);
                if (rc < 0)
                {
                    _zmq.MsgClose(_msg);
                    if (parts.Count == 0) return false; // timeout (EAGAIN), EINTR or ETERM: nothing this time
                    // Parts of one message arrive atomically, so this cannot happen; drop the fragment.
                    parts.Clear();
                    return false;
                }
                int size = (int)(ulong)_zmq.MsgSize(_msg);
                var data = new byte[size];
                if (size > 0) Marshal.Copy(_zmq.MsgData(_msg), data, 0, size);
                bool more = _zmq.MsgMore(_msg) != 0;
                _zmq.MsgClose(_msg);
                parts.Add(data);
                if (!more) return true;
                flags = ZmqConst.DontWait; // the other parts of a message are already here
            }
        }

        public void Dispose()
        {
            Close();
            if (_context != IntPtr.Zero)
            {
                _zmq.CtxTerm(_context); // all sockets are closed with linger 0: returns at once
                _context = IntPtr.Zero;
            }
            if (_msg != IntPtr.Zero)
            {
                Marshal.FreeHGlobal(_msg);
                _msg = IntPtr.Zero;
            }
        }
    }
}
