#if CONVAI_NETMQ
using System;
using System.Collections.Generic;
using NetMQ;
using NetMQ.Sockets;

namespace ConvaiBridge.Transport
{
    /// <summary>
    /// DEALER transport over NetMQ (managed ZeroMQ; no native plugin). Compiled only with the
    /// CONVAI_NETMQ scripting define, when NetMQ 4.0.1.x and its AsyncIO dependency are in the project
    /// (see README). Initialize() forces AsyncIO's managed socket implementation before the first
    /// socket, without which the editor can freeze on play-mode exit; NetMQ 4.0.2+ builds for .NET
    /// Standard no longer ship AsyncIO: define CONVAI_NETMQ_NO_ASYNCIO then. Dispose() calls
    /// NetMQConfig.Cleanup(false) so nothing blocks on shutdown.
    /// </summary>
    public sealed class NetMqTransport : IBridgeTransport
    {
        private static bool _initialized;
        private DealerSocket _socket;
        private NetMQMessage _incoming;

        public static void Initialize()
        {
            if (_initialized) return;
#if !CONVAI_NETMQ_NO_ASYNCIO
            AsyncIO.ForceDotNet.Force();
#endif
            _initialized = true;
        }

        public NetMqTransport() { Initialize(); }

        public string Name { get { return "NetMQ"; } }

        public void Open(string endpoint)
        {
            Close();
            _socket = new DealerSocket();
            _socket.Options.Linger = TimeSpan.Zero;
            _socket.Options.SendHighWatermark = 1000;
            _socket.Options.ReceiveHighWatermark = 10000;
            _socket.Options.ReconnectInterval = TimeSpan.FromMilliseconds(100);
            _socket.Connect(endpoint);
        }

        public void Close()
        {
            if (_socket == null) return;
            _socket.Dispose();
            _socket = null;
        }

        public bool TrySend(IList<byte[]> parts)
        {
            if (_socket == null || parts.Count == 0) return false;
            var message = new NetMQMessage(parts.Count);
            for (int i = 0; i < parts.Count; i++) message.Append(parts[i]);
            return _socket.TrySendMultipartMessage(TimeSpan.Zero, message);
        }

        public bool TryReceive(List<byte[]> parts, int timeoutMs)
        {
            parts.Clear();
            if (_socket == null) return false;
            if (!_socket.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(timeoutMs), ref _incoming)) return false;
            foreach (var frame in _incoming) parts.Add(frame.ToByteArray(true));
            _incoming.Clear();
            return true;
        }

        public void Dispose()
        {
            Close();
            NetMQConfig.Cleanup(false);
        }
    }
}
#endif
