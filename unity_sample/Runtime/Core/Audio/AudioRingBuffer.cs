using System;
using System.Diagnostics;

namespace ConvaiBridge.Audio
{
    /// <summary>Where playback is: which turn, and the sample offset (per channel) within that turn.</summary>
    public struct PlaybackPosition
    {
        public long Turn;
        /// <summary>Offset of the sample playing now, on the turn's audio_out clock (frames, not bytes).</summary>
        public long Offset;
        /// <summary>False when the buffer ran dry (nothing of this turn is playing right now).</summary>
        public bool Playing;
    }

    /// <summary>
    /// Bot audio for one NPC: the network thread writes decoded PCM, the audio thread pulls floats
    /// (OnAudioFilterRead-style), an interrupt flushes it at once. Each write is tagged with the turn
    /// and the audio_out offset of its first sample, so the reader knows the playback position on
    /// the turn's clock, which is what lip sync follows.
    ///
    /// A plain lock guards it: every critical section is a bounded copy without allocation, so the
    /// audio thread waits at most microseconds, and flush/clear from any thread stays simple.
    /// </summary>
    public sealed class AudioRingBuffer
    {
        private struct Segment
        {
            public long Start;   // index of the first frame in the stream of all frames written
            public long Turn;
            public long Offset;  // that frame's audio_out offset in its turn
        }

        private readonly object _lock = new object();
        private readonly float[] _data;
        private readonly int _channels;
        private readonly int _capacityFrames;
        private readonly Segment[] _segments = new Segment[256];
        private int _segHead, _segCount;
        private long _written;   // frames ever written
        private long _read;      // frames ever read
        private long _lastTurn = -1;
        private long _lastEndOffset;

        // Resampling state: output sits at _phase between _prev and _next (the two frames around it).
        private readonly float[] _prev = new float[8];
        private readonly float[] _next = new float[8];
        private double _phase;
        private bool _primed, _hasNext;

        // Playback clock (last pull).
        private PlaybackPosition _blockStart;
        private int _blockFrames;
        private long _blockTicks;

        public readonly int SampleRate;

        /// <summary>Frames dropped because the buffer was full (nobody pulling).</summary>
        public long OverflowFrames { get; private set; }
        /// <summary>Frames of silence handed out because the buffer was empty mid-turn.</summary>
        public long UnderrunFrames { get; private set; }

        public AudioRingBuffer(int sampleRate, int channels, int capacityMs = 2000)
        {
            if (channels < 1 || channels > 8) throw new ArgumentOutOfRangeException("channels");
            if (sampleRate < 1) throw new ArgumentOutOfRangeException("sampleRate");
            SampleRate = sampleRate;
            _channels = channels;
            _capacityFrames = Math.Max(1, (int)((long)sampleRate * capacityMs / 1000));
            _data = new float[_capacityFrames * channels];
        }

        public int Channels { get { return _channels; } }
        public int CapacityFrames { get { return _capacityFrames; } }

        public int AvailableFrames
        {
            get { lock (_lock) return (int)(_written - _read); }
        }

        /// <summary>
        /// Append little-endian int16 interleaved PCM (an audio_out frame). When full, the oldest frames
        /// are dropped: the daemon paces audio in real time, so a full buffer means nobody is playing it.
        /// </summary>
        public void WritePcm16(byte[] pcm, int byteOffset, int frames, long turn, long turnOffset)
        {
            if (pcm == null || frames <= 0) return;
            int samples = frames * _channels;
            if (byteOffset < 0 || byteOffset + samples * 2 > pcm.Length) throw new ArgumentException("pcm is shorter than frames*channels*2");
            lock (_lock)
            {
                if (frames > _capacityFrames)
                {
                    int skip = frames - _capacityFrames;
                    byteOffset += skip * _channels * 2;
                    turnOffset += skip;
                    frames = _capacityFrames;
                    samples = frames * _channels;
                }
                long free = _capacityFrames - (_written - _read);
                if (frames > free)
                {
                    long drop = frames - free;
                    _read += drop;
                    OverflowFrames += drop;
                    DropPlayedSegments();
                }
                MarkSegment(turn, turnOffset);
                int pos = (int)((_written % _capacityFrames) * _channels);
                int total = _data.Length;
                for (int i = 0; i < samples; i++)
                {
                    short s = (short)(pcm[byteOffset + 2 * i] | (pcm[byteOffset + 2 * i + 1] << 8));
                    _data[pos] = s / 32768f;
                    if (++pos == total) pos = 0;
                }
                _written += frames;
                _lastTurn = turn;
                _lastEndOffset = turnOffset + frames;
            }
        }

        private void MarkSegment(long turn, long turnOffset)
        {
            // A write that continues the previous one needs no new segment.
            if (_segCount > 0 && turn == _lastTurn && turnOffset == _lastEndOffset) return;
            if (_segCount == _segments.Length) { _segHead = (_segHead + 1) % _segments.Length; _segCount--; }
            int idx = (_segHead + _segCount) % _segments.Length;
            _segments[idx] = new Segment { Start = _written, Turn = turn, Offset = turnOffset };
            _segCount++;
        }

        /// <summary>
        /// Pull audio for the output: fills frames*outChannels floats at data[offset..], mapping the
        /// buffer's channels to outChannels (mono is duplicated, stereo averaged down), silence where
        /// the buffer is empty. Returns the frames of real audio delivered. Audio-thread safe, no allocation.
        /// </summary>
        public int Read(float[] data, int offset, int frames, int outChannels, float gain = 1f)
        {
            if (outChannels < 1) throw new ArgumentOutOfRangeException("outChannels");
            int got;
            lock (_lock)
            {
                long avail = _written - _read;
                got = (int)Math.Min(avail, frames);
                PlaybackPosition start = PositionAt(_read);
                start.Playing = got > 0;
                int pos = (int)((_read % _capacityFrames) * _channels);
                int total = _data.Length;
                int o = offset;
                for (int f = 0; f < got; f++)
                {
                    if (_channels == outChannels)
                    {
                        for (int c = 0; c < outChannels; c++) { data[o++] = _data[pos] * gain; if (++pos == total) pos = 0; }
                    }
                    else if (_channels == 1)
                    {
                        float v = _data[pos] * gain;
                        if (++pos == total) pos = 0;
                        for (int c = 0; c < outChannels; c++) data[o++] = v;
                    }
                    else
                    {
                        float sum = 0f;
                        for (int c = 0; c < _channels; c++) { sum += _data[pos]; if (++pos == total) pos = 0; }
                        float v = sum / _channels * gain;
                        for (int c = 0; c < outChannels; c++) data[o++] = v;
                    }
                }
                _read += got;
                DropPlayedSegments();
                if (got < frames && got > 0) UnderrunFrames += frames - got;
                _blockStart = start;
                _blockFrames = got;
                _blockTicks = Stopwatch.GetTimestamp();
            }
            Array.Clear(data, offset + got * outChannels, (frames - got) * outChannels);
            return got;
        }

        /// <summary>
        /// Pull audio for an output running at outputRate (the device rate, which may differ from the
        /// buffer's rate or change while playing: a headset plugged in). Same as Read when the rates match;
        /// otherwise linear interpolation with its phase kept across calls, so blocks join without clicks
        /// and pitch and duration stay right. The playback clock keeps counting buffer frames. Returns the
        /// output frames of real audio delivered. Audio-thread safe, no allocation.
        /// </summary>
        public int Read(float[] data, int offset, int frames, int outChannels, float gain, int outputRate)
        {
            if (outputRate <= 0 || outputRate == SampleRate)
            {
                _primed = false;
                return Read(data, offset, frames, outChannels, gain);
            }
            if (outChannels < 1) throw new ArgumentOutOfRangeException("outChannels");
            double step = (double)SampleRate / outputRate;
            int produced = 0;
            lock (_lock)
            {
                PlaybackPosition start = PositionAt(_read);
                long readBefore = _read;
                int total = _data.Length;
                int o = offset;
                if (!_primed && _written - _read > 0)
                {
                    // Start from the first unread frame (no ramp from an old, unrelated sample).
                    Load(_prev);
                    _hasNext = false;
                    _phase = 0;
                    _primed = true;
                }
                while (produced < frames && _primed)
                {
                    if (!_hasNext)
                    {
                        if (_written - _read <= 0) break; // ran dry
                        Load(_next);
                        _hasNext = true;
                    }
                    if (_phase >= 1.0)
                    {
                        Array.Copy(_next, _prev, _channels);
                        _hasNext = false;
                        _phase -= 1.0;
                        continue;
                    }
                    float t = (float)_phase;
                    if (_channels == outChannels)
                    {
                        for (int c = 0; c < outChannels; c++) data[o++] = (_prev[c] + (_next[c] - _prev[c]) * t) * gain;
                    }
                    else
                    {
                        float sum = 0f;
                        for (int c = 0; c < _channels; c++) sum += _prev[c] + (_next[c] - _prev[c]) * t;
                        float v = sum / _channels * gain;
                        for (int c = 0; c < outChannels; c++) data[o++] = v;
                    }
                    produced++;
                    _phase += step;
                }
                if (produced < frames) _primed = false; // a gap: the next audio starts fresh
                DropPlayedSegments();
                int consumed = (int)(_read - readBefore);
                if (produced < frames && produced > 0) UnderrunFrames += frames - produced;
                start.Playing = consumed > 0 || produced > 0;
                _blockStart = start;
                _blockFrames = consumed;
                _blockTicks = Stopwatch.GetTimestamp();
            }
            Array.Clear(data, offset + produced * outChannels, (frames - produced) * outChannels);
            return produced;
        }

        // Consume one frame at _read into frame (caller holds the lock and checked that one is there).
        private void Load(float[] frame)
        {
            int pos = (int)((_read % _capacityFrames) * _channels);
            for (int c = 0; c < _channels; c++) frame[c] = _data[pos + c];
            _read++;
        }

        private PlaybackPosition PositionAt(long frameIndex)
        {
            var p = new PlaybackPosition { Turn = _lastTurn, Offset = _lastEndOffset };
            for (int i = _segCount - 1; i >= 0; i--)
            {
                var s = _segments[(_segHead + i) % _segments.Length];
                if (s.Start <= frameIndex)
                {
                    p.Turn = s.Turn;
                    p.Offset = s.Offset + (frameIndex - s.Start);
                    return p;
                }
            }
            return p;
        }

        private void DropPlayedSegments()
        {
            // Keep the segment that contains _read; drop the ones before it.
            while (_segCount > 1 && _segments[(_segHead + 1) % _segments.Length].Start <= _read)
            {
                _segHead = (_segHead + 1) % _segments.Length;
                _segCount--;
            }
        }

        /// <summary>
        /// The playback position now: the start of the last pulled block advanced by the wall time since
        /// the pull (capped at the block's end), minus latencyFrames for the output's own buffering.
        /// </summary>
        public PlaybackPosition GetPlaybackPosition(int latencyFrames = 0)
        {
            lock (_lock)
            {
                var p = _blockStart;
                double elapsed = (double)(Stopwatch.GetTimestamp() - _blockTicks) / Stopwatch.Frequency;
                long advance = Math.Min(_blockFrames, (long)(elapsed * SampleRate));
                p.Offset = Math.Max(0, p.Offset + advance - latencyFrames);
                if (_blockFrames == 0) p.Playing = false;
                return p;
            }
        }

        /// <summary>Drop everything queued (interrupt). Safe from any thread.</summary>
        public void Clear()
        {
            lock (_lock)
            {
                _read = _written;
                _primed = false;
                _segHead = 0;
                _segCount = 0;
                _blockFrames = 0;
                _blockStart.Playing = false;
            }
        }

        /// <summary>Drop queued audio of turns up to and including turn (late audio of an interrupted turn).</summary>
        public void ClearThroughTurn(long turn)
        {
            lock (_lock)
            {
                // Segments are in stream order; find the first one after the turn.
                long keepFrom = _written;
                for (int i = 0; i < _segCount; i++)
                {
                    var s = _segments[(_segHead + i) % _segments.Length];
                    if (s.Turn > turn) { keepFrom = Math.Max(s.Start, _read); break; }
                }
                if (keepFrom > _read)
                {
                    _read = keepFrom;
                    _primed = false;
                    DropPlayedSegments();
                    if (_read == _written) { _segHead = 0; _segCount = 0; }
                }
                if (_blockStart.Turn <= turn) { _blockFrames = 0; _blockStart.Playing = false; }
            }
        }
    }
}
