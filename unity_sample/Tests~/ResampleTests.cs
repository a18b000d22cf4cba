using System;
using ConvaiBridge.Audio;

namespace ConvaiBridge.Tests
{
    /// <summary>Playback when the output device runs at another rate than the session's audio.</summary>
    public static class ResampleTests
    {
        private static byte[] Sine(int rate, double hz, int frames, int channels, double amp = 0.5)
        {
            var b = new byte[frames * channels * 2];
            for (int i = 0; i < frames; i++)
            {
                short v = (short)Math.Round(amp * 32767 * Math.Sin(2 * Math.PI * hz * i / rate));
                for (int c = 0; c < channels; c++)
                {
                    int k = 2 * (i * channels + c);
                    b[k] = (byte)v;
                    b[k + 1] = (byte)(v >> 8);
                }
            }
            return b;
        }

        /// <summary>Reads everything in device-sized blocks; returns channel 0 of what was produced.</summary>
        private static float[] Drain(AudioRingBuffer rb, int outRate, int outChannels, int block, out int produced)
        {
            var all = new float[outRate * 4];
            var buf = new float[block * outChannels];
            produced = 0;
            while (true)
            {
                int got = rb.Read(buf, 0, block, outChannels, 1f, outRate);
                for (int i = 0; i < got; i++) all[produced + i] = buf[i * outChannels];
                produced += got;
                if (got < block) return all;
            }
        }

        private static void CheckSine(float[] y, int n, int rate, double hz, double amp, string what)
        {
            double worst = 0;
            for (int k = 0; k < n; k++)
                worst = Math.Max(worst, Math.Abs(y[k] - amp * Math.Sin(2 * Math.PI * hz * k / rate)));
            Assert.True(worst < 0.01, what + ": off the ideal sine by " + worst.ToString("F4"));
        }

        [Test]
        public static void DownsamplesAcrossBlocksWithoutClicksOrPitchChange()
        {
            var rb = new AudioRingBuffer(48000, 1, 2000);
            rb.WritePcm16(Sine(48000, 440, 48000, 1), 0, 48000, 1, 0);
            int produced;
            var y = Drain(rb, 44100, 2, 441, out produced); // stereo device, 10 ms blocks
            Assert.Near(44100, produced, 2, "one second of output at 44.1 kHz");
            Assert.Equal(0, rb.AvailableFrames, "all input consumed");
            CheckSine(y, produced - 1, 44100, 440, 0.5, "48 kHz -> 44.1 kHz");
        }

        [Test]
        public static void UpsamplesStereoToMonoDevice()
        {
            var rb = new AudioRingBuffer(16000, 2, 2000);
            rb.WritePcm16(Sine(16000, 200, 8000, 2), 0, 8000, 1, 0);
            int produced;
            var y = Drain(rb, 48000, 1, 1024, out produced);
            Assert.Near(24000, produced, 3, "half a second at 48 kHz");
            CheckSine(y, produced - 3, 48000, 200, 0.5, "16 kHz stereo -> 48 kHz mono");
        }

        [Test]
        public static void RateChangeMidStreamKeepsTheSignalContinuous()
        {
            var rb = new AudioRingBuffer(48000, 1, 2000);
            rb.WritePcm16(Sine(48000, 300, 24000, 1), 0, 24000, 1, 0);
            var buf = new float[512];
            // 0.25 s at the device's first rate (same as the buffer), then it reopens at 44.1 kHz.
            int first = 0;
            while (first < 12000) first += rb.Read(buf, 0, 480, 1, 1f, 48000);
            float last = buf[479];
            int got = rb.Read(buf, 0, 441, 1, 1f, 44100);
            Assert.Equal(441, got, "block after the change");
            double expected = 0.5 * Math.Sin(2 * Math.PI * 300 * 12000 / 48000.0);
            Assert.Near(expected, buf[0], 0.01, "first sample after the change continues the stream");
            Assert.True(Math.Abs(buf[0] - last) < 0.05, "no jump at the change");
            CheckSineFrom(buf, 441, 44100, 300, 0.5, 12000 / 48000.0);
        }

        private static void CheckSineFrom(float[] y, int n, int rate, double hz, double amp, double t0)
        {
            for (int k = 0; k < n; k++)
            {
                double want = amp * Math.Sin(2 * Math.PI * hz * (t0 + (double)k / rate));
                Assert.Near(want, y[k], 0.01, "sample " + k + " after the rate change");
            }
        }

        [Test]
        public static void PlaybackClockCountsBufferFramesAndGapsRestartCleanly()
        {
            var rb = new AudioRingBuffer(48000, 1, 2000);
            rb.WritePcm16(Sine(48000, 440, 4800, 1), 0, 4800, 7, 96000);
            var buf = new float[441];
            rb.Read(buf, 0, 441, 1, 1f, 44100);
            var p = rb.GetPlaybackPosition(0);
            Assert.Equal(7L, p.Turn, "turn");
            Assert.True(p.Playing, "playing");
            Assert.True(p.Offset >= 96000 && p.Offset <= 96000 + 481, "offset on the 48 kHz turn clock: " + p.Offset);
            // Run dry, then new audio of the next turn starts from its first sample (no stale interpolation).
            while (rb.Read(buf, 0, 441, 1, 1f, 44100) == 441) { }
            var one = new byte[] { 0x00, 0x40, 0x00, 0x40, 0x00, 0x40 }; // 0.5, 0.5, 0.5
            rb.WritePcm16(one, 0, 3, 8, 0);
            int got = rb.Read(buf, 0, 4, 1, 1f, 44100);
            Assert.True(got >= 2, "new audio delivered");
            Assert.Near(0.5, buf[0], 1e-6, "first sample of the new turn, not blended with the old one");
        }
    }
}
