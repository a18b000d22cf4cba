using System;

namespace ConvaiBridge.Protocol
{
    /// <summary>
    /// A message that cannot be encoded or decoded. Code is one of the protocol's stable error codes
    /// (bad_message, unknown_type, missing_field, invalid_field, version_mismatch, message_too_large),
    /// so a client can report exactly what the daemon would have answered.
    /// </summary>
    public sealed class ProtocolException : Exception
    {
        public readonly string Code;
        /// <summary>The request id of the offending message, when it could be read.</summary>
        public readonly long? RequestId;
        /// <summary>The session id of the offending message, when it could be read.</summary>
        public readonly string Sid;

        public ProtocolException(string code, string message, long? requestId = null, string sid = null)
            : base(message)
        {
            Code = code;
            RequestId = requestId;
            Sid = sid;
        }

        public override string ToString() { return Code + ": " + Message; }
    }
}
