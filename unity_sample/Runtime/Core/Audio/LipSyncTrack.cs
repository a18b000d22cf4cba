using System;
using System.Collections.Generic;

namespace ConvaiBridge.Audio
{
    /// <summary>
    /// Lip-sync frames of one NPC keyed by (turn, sample offset) on the turn's audio_out clock. The
    /// network thread adds frames as they arrive (usually ahead of the audio); the game asks for the
    /// weights at the current playback position, so the face follows the sound, not arrival time.
    /// </summary>
    public sealed class LipSyncTrack
    {
        /// <summary>Viseme order of the protocol's visemes event.</summary>
        public static readonly string[] VisemeNames =
        {
            "sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou",
        };

        /// <summary>Weight order of blendshapes frames with format "arkit" (width 61).</summary>
        public static readonly string[] ArkitNames =
        {
            "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
            "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
            "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose",
            "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight",
            "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
            "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
            "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
            "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
            "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight",
            "TongueOut", "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
            "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
        };

        /// <summary>Index of a viseme or ARKit name in the current format's order, or -1.</summary>
        public static int IndexOf(string format, string name)
        {
            var names = format == "arkit" ? ArkitNames : format == "visemes" ? VisemeNames : null;
            if (names == null) return -1;
            for (int i = 0; i < names.Length; i++)
                if (string.Equals(names[i], name, StringComparison.OrdinalIgnoreCase)) return i;
            return -1;
        }

        private struct Frame
        {
            public long Turn;
            public long Offset;
            public float[] Weights;
        }

        private readonly object _lock = new object();
        private readonly List<Frame> _frames = new List<Frame>();
        private readonly int _maxFrames;
        private int _width;

        /// <summary>"visemes", "arkit" or "mha": what the last frames were.</summary>
        public string Format { get; private set; }

        public LipSyncTrack(int maxFrames = 4096) { _maxFrames = Math.Max(16, maxFrames); }

        /// <summary>Weights per frame (15 for visemes, 61 ARKit, 251 MetaHuman); 0 before the first frame.</summary>
        public int Width { get { lock (_lock) return _width; } }

        public int Count { get { lock (_lock) return _frames.Count; } }

        public void AddVisemes(long turn, long offset, IList<double> weights)
        {
            var w = new float[weights.Count];
            for (int i = 0; i < w.Length; i++) w[i] = (float)weights[i];
            lock (_lock)
            {
                Format = "visemes";
                Insert(turn, offset, w);
            }
        }

        /// <summary>
        /// A blendshapes event: count frames of width float32 (LE, row-major); frame k plays at
        /// offset + round(k * sampleRate / fps).
        /// </summary>
        public void AddBlendshapes(long turn, long offset, int fps, int width, int count, byte[] f32le, int sampleRate, string format)
        {
            if (fps <= 0 || width <= 0 || count <= 0 || f32le == null || f32le.Length < width * count * 4) return;
            lock (_lock)
            {
                Format = format;
                for (int k = 0; k < count; k++)
                {
                    var w = new float[width];
                    Buffer.BlockCopy(f32le, k * width * 4, w, 0, width * 4);
                    if (!BitConverter.IsLittleEndian) SwapEndian(w);
                    long at = offset + (long)Math.Round((double)k * sampleRate / fps, MidpointRounding.ToEven);
                    Insert(turn, at, w);
                }
            }
        }

        private static void SwapEndian(float[] w)
        {
            for (int i = 0; i < w.Length; i++)
            {
                var b = BitConverter.GetBytes(w[i]);
                Array.Reverse(b);
                w[i] = BitConverter.ToSingle(b, 0);
            }
        }

        private void Insert(long turn, long offset, float[] weights)
        {
            _width = weights.Length;
            var f = new Frame { Turn = turn, Offset = offset, Weights = weights };
            int i = _frames.Count;
            while (i > 0 && Later(_frames[i - 1], f)) i--;
            _frames.Insert(i, f);
            if (_frames.Count > _maxFrames) _frames.RemoveRange(0, _frames.Count - _maxFrames);
        }

        private static bool Later(Frame a, Frame b)
        {
            return a.Turn > b.Turn || (a.Turn == b.Turn && a.Offset > b.Offset);
        }

        /// <summary>lipsync_cancel: drop frames of the turn after validThrough; null drops the whole turn.</summary>
        public void Cancel(long turn, long? validThrough)
        {
            lock (_lock)
            {
                _frames.RemoveAll(f => f.Turn == turn && (!validThrough.HasValue || f.Offset > validThrough.Value));
            }
        }

        /// <summary>Drop frames of turns up to and including turn (interrupted or finished turns).</summary>
        public void DropThroughTurn(long turn)
        {
            lock (_lock) _frames.RemoveAll(f => f.Turn <= turn);
        }

        public void Clear()
        {
            lock (_lock) _frames.Clear();
        }

        /// <summary>
        /// Weights at (turn, offset): the last frame at or before offset, blended linearly toward the
        /// next one when interpolate is set. Frames before it are discarded (the clock only moves
        /// forward). Returns false (dest zeroed) when the turn has no frame at or before offset.
        /// </summary>
        public bool Sample(long turn, long offset, float[] dest, bool interpolate = true)
        {
            if (dest == null) throw new ArgumentNullException("dest");
            lock (_lock)
            {
                // Frames of older turns are stale once a newer turn plays.
                int stale = 0;
                while (stale < _frames.Count && _frames[stale].Turn < turn) stale++;
                if (stale > 0) _frames.RemoveRange(0, stale);

                int last = -1;
                for (int i = 0; i < _frames.Count && _frames[i].Turn == turn && _frames[i].Offset <= offset; i++) last = i;
                if (last < 0)
                {
                    Array.Clear(dest, 0, dest.Length);
                    return false;
                }
                if (last > 0) { _frames.RemoveRange(0, last); last = 0; }
                var a = _frames[last];
                int n = Math.Min(dest.Length, a.Weights.Length);
                bool blend = interpolate && last + 1 < _frames.Count && _frames[last + 1].Turn == turn
                             && _frames[last + 1].Offset > a.Offset;
                if (blend)
                {
                    var b = _frames[last + 1];
                    float t = (float)(offset - a.Offset) / (b.Offset - a.Offset);
                    for (int i = 0; i < n; i++)
                    {
                        float bw = i < b.Weights.Length ? b.Weights[i] : 0f;
                        dest[i] = a.Weights[i] + (bw - a.Weights[i]) * t;
                    }
                }
                else
                {
                    Array.Copy(a.Weights, dest, n);
                }
                if (dest.Length > n) Array.Clear(dest, n, dest.Length - n);
                return true;
            }
        }
    }
}
