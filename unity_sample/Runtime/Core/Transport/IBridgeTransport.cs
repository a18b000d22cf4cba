using System;
using System.Collections.Generic;

namespace ConvaiBridge.Transport
{
    /// <summary>
    /// One ZeroMQ DEALER connection to the daemon's ROUTER. BridgeClient calls every member from its
    /// network thread only (ZeroMQ sockets are not thread-safe), so implementations need no locking.
    /// </summary>
    public interface IBridgeTransport : IDisposable
    {
        /// <summary>Human-readable name for logs ("libzmq 4.3.4", "NetMQ").</summary>
        string Name { get; }

        /// <summary>
        /// Close any current socket (dropping what it still holds) and connect a fresh DEALER. A new
        /// socket is a new identity for the daemon, which is how the client starts over cleanly.
        /// </summary>
        void Open(string endpoint);

        /// <summary>Close the socket now with linger 0: unsent messages are dropped, nothing blocks.</summary>
        void Close();

        /// <summary>Queue one multipart message without blocking; false when the socket would block.</summary>
        bool TrySend(IList<byte[]> parts);

        /// <summary>Wait up to timeoutMs (0: don't wait) for one multipart message; false on timeout.</summary>
        bool TryReceive(List<byte[]> parts, int timeoutMs);
    }
}
