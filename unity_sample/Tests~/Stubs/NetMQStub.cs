// Compile-time stand-in for the NetMQ 4.0.1.x / AsyncIO 0.1.69 members NetMqTransport uses (names and
// signatures as in NetMQ's public API); lets CI type-check the CONVAI_NETMQ build. Bodies do nothing.
#pragma warning disable 1591
using System;
using System.Collections;
using System.Collections.Generic;

namespace AsyncIO
{
    public static class ForceDotNet { public static void Force() { } }
}

namespace NetMQ
{
    public sealed class NetMQFrame { public byte[] ToByteArray(bool copy = false) { return new byte[0]; } }

    public class NetMQMessage : IEnumerable<NetMQFrame>
    {
        public NetMQMessage(int expectedFrameCount = 4) { }
        public void Append(byte[] buffer) { }
        public void Clear() { }
        public IEnumerator<NetMQFrame> GetEnumerator() { yield break; }
        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }
    }

    public sealed class SocketOptions
    {
        public TimeSpan Linger { get; set; }
        public TimeSpan ReconnectInterval { get; set; }
        public int SendHighWatermark { get; set; }
        public int ReceiveHighWatermark { get; set; }
    }

    public interface IOutgoingSocket { }
    public interface IReceivingSocket { }

    public abstract class NetMQSocket : IOutgoingSocket, IReceivingSocket, IDisposable
    {
        public SocketOptions Options { get { return null; } }
        public void Connect(string address) { }
        public void Dispose() { }
    }

    public static class OutgoingSocketExtensions
    {
        public static bool TrySendMultipartMessage(this IOutgoingSocket socket, TimeSpan timeout, NetMQMessage message) { return true; }
    }

    public static class ReceivingSocketExtensions
    {
        public static bool TryReceiveMultipartMessage(this IReceivingSocket socket, TimeSpan timeout, ref NetMQMessage message,
            int expectedFrameCount = 4) { return false; }
    }

    public static class NetMQConfig { public static void Cleanup(bool block = true) { } }
}

namespace NetMQ.Sockets
{
    public sealed class DealerSocket : NetMQSocket { public DealerSocket(string connectionString = null) { } }
}
