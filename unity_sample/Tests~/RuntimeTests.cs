using System;
using System.Collections.Generic;
using System.Threading;
using ConvaiBridge.Audio;
using ConvaiBridge.Client;

namespace ConvaiBridge.Tests
{
    /// <summary>Ring buffer, main-thread queue isolation and the lip-sync clock.</summary>
    public static class RuntimeTests
    {
        private static byte[] Pcm(params short[] samples)
        {
            var b = new byte[samples.Length * 2];
            for (int i = 0; i < samples.Length; i++) { b[2 * i] = (byte)samples[i]; b[2 * i + 1] = (byte)(samples[i] >> 8); }
            return b;
        }

        private static byte[] Ramp(int frames, int start, int modulus = 30000)
        {
            var s = new short[frames];
            for (int i = 0; i < frames; i++) s[i] = (short)((start + i) % modulus);
            return Pcm(s);
        }

        [Test]
        public static void RingBufferConvertsAndZeroPads()
        {
            var rb = new AudioRingBuffer(48000, 1, 100);
            rb.WritePcm16(Pcm(16384, -32768, 32767), 0, 3, 1, 0);
            var out5 = new float[5];
            for (int i = 0; i < out5.Length; i++) out5[i] = 9f;
            int got = rb.Read(out5, 0, 5, 1);
            Assert.Equal(3, got, "frames read");
            Assert.Near(0.5, out5[0], 1e-6, "16384");
            Assert.Near(-1.0, out5[1], 1e-6, "-32768");
            Assert.Near(32767 / 32768.0, out5[2], 1e-6, "32767");
            Assert.Equal(0f, out5[3], "zero pad");
            Assert.Equal(0f, out5[4], "zero pad");
        }

        [Test]
        public static void RingBufferMapsChannels()
        {
            var mono = new AudioRingBuffer(48000, 1, 100);
            mono.WritePcm16(Pcm(8192, 16384), 0, 2, 1, 0);
            var st = new float[4];
            mono.Read(st, 0, 2, 2);
            Assert.Near(0.25, st[0], 1e-6, "L0");
            Assert.Near(0.25, st[1], 1e-6, "R0 duplicated");
            Assert.Near(0.5, st[2], 1e-6, "L1");
            var stereo = new AudioRingBuffer(48000, 2, 100);
            stereo.WritePcm16(Pcm(8192, 16384), 0, 1, 1, 0);
            var m = new float[1];
            stereo.Read(m, 0, 1, 1);
            Assert.Near(0.375, m[0], 1e-6, "stereo averaged to mono");
        }

        [Test]
        public static void RingBufferWrapsAroundInOrder()
        {
            var rb = new AudioRingBuffer(1000, 1, 100); // 100 frames
            int next = 0, expect = 0;
            var buf = new float[37];
            for (int round = 0; round < 200; round++)
            {
                int n = 1 + round % 60;
                if (rb.AvailableFrames + n <= rb.CapacityFrames) { rb.WritePcm16(Ramp(n, next), 0, n, 1, next); next += n; }
                int got = rb.Read(buf, 0, buf.Length, 1);
                for (int i = 0; i < got; i++)
                {
                    Assert.Equal((short)expect, (short)Math.Round(buf[i] * 32768f), "sample " + expect);
                    expect++;
                }
            }
            Assert.True(expect > 1000, "moved enough data: " + expect);
            Assert.Equal(0L, rb.OverflowFrames, "no overflow");
        }

        [Test]
        public static void RingBufferOverflowDropsOldest()
        {
            var rb = new AudioRingBuffer(1000, 1, 10); // 10 frames
            rb.WritePcm16(Ramp(8, 0), 0, 8, 1, 0);
            rb.WritePcm16(Ramp(6, 8), 0, 6, 1, 8);
            Assert.Equal(4L, rb.OverflowFrames, "overflow");
            var buf = new float[10];
            Assert.Equal(10, rb.Read(buf, 0, 10, 1), "full");
            Assert.Equal((short)4, (short)Math.Round(buf[0] * 32768f), "oldest kept is 4");
            Assert.Equal((short)13, (short)Math.Round(buf[9] * 32768f), "newest");
        }

        [Test]
        public static void ClearFlushesAndClearThroughTurnKeepsTheNextTurn()
        {
            var rb = new AudioRingBuffer(1000, 1, 1000);
            rb.WritePcm16(Ramp(100, 0), 0, 100, 3, 0);
            rb.Clear();
            Assert.Equal(0, rb.AvailableFrames, "cleared");
            rb.WritePcm16(Ramp(50, 0), 0, 50, 4, 0);
            rb.WritePcm16(Ramp(30, 1000), 0, 30, 5, 0);
            rb.ClearThroughTurn(4);
            Assert.Equal(30, rb.AvailableFrames, "turn 5 kept");
            var buf = new float[30];
            rb.Read(buf, 0, 30, 1);
            Assert.Equal((short)1000, (short)Math.Round(buf[0] * 32768f), "first sample of turn 5");
            var pos = rb.GetPlaybackPosition();
            Assert.Equal(5L, pos.Turn, "playing turn 5");
        }

        [Test]
        public static void PlaybackPositionFollowsTurnOffsets()
        {
            var rb = new AudioRingBuffer(48000, 1, 1000);
            rb.WritePcm16(Ramp(960, 0), 0, 960, 7, 0);
            rb.WritePcm16(Ramp(960, 0), 0, 960, 7, 960);
            var buf = new float[1024];
            rb.Read(buf, 0, 512, 1);
            rb.Read(buf, 0, 1024, 1);
            var p = rb.GetPlaybackPosition();
            Assert.Equal(7L, p.Turn, "turn");
            Assert.True(p.Playing, "playing");
            Assert.True(p.Offset >= 512 && p.Offset <= 512 + 1024, "offset within the pulled block: " + p.Offset);
            Thread.Sleep(40); // more than the block's 21 ms: the estimate stops at the block's end
            Assert.Equal(512L + 1024, rb.GetPlaybackPosition().Offset, "capped at block end");
            Assert.Equal(512L + 1024 - 100, rb.GetPlaybackPosition(100).Offset, "latency compensation");
            rb.Read(buf, 0, 1024, 1); // 384 left, then silence
            rb.Read(buf, 0, 1024, 1);
            Assert.True(!rb.GetPlaybackPosition().Playing, "dry buffer is not playing");
        }

        /// <summary>A writer and a reader thread at once: every sample arrives once, in order.</summary>
        [Test]
        public static void RingBufferConcurrentWriterAndReader()
        {
            var rb = new AudioRingBuffer(48000, 1, 200);
            const int total = 48000;
            int written = 0;
            var giveUp = DateTime.UtcNow.AddSeconds(10);
            var writer = new Thread(() =>
            {
                while (written < total && DateTime.UtcNow < giveUp)
                {
                    int n = Math.Min(480, total - written);
                    if (rb.AvailableFrames + n > rb.CapacityFrames) { Thread.Sleep(1); continue; }
                    rb.WritePcm16(Ramp(n, written), 0, n, 1, written);
                    written += n;
                }
            }) { IsBackground = true };
            writer.Start();
            var buf = new float[256];
            int seen = 0;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (seen < total && DateTime.UtcNow < deadline)
            {
                int got = rb.Read(buf, 0, buf.Length, 1);
                for (int i = 0; i < got; i++, seen++)
                    if ((short)Math.Round(buf[i] * 32768f) != (short)(seen % 30000))
                        throw new AssertionException("sample " + seen + " out of order");
                if (got == 0) Thread.Sleep(0);
            }
            writer.Join(2000);
            Assert.Equal(total, seen, "all samples read");
        }

        [Test]
        public static void QueueIsolatesThrowingHandlers()
        {
            var q = new MainThreadQueue();
            var ran = new List<int>();
            var failures = new List<Exception>();
            q.ItemFailed += failures.Add;
            q.Post(() => ran.Add(1));
            q.Post(() => { throw new InvalidOperationException("game bug"); });
            q.Post(() => ran.Add(3));
            q.Post(() => { throw new NullReferenceException(); });
            q.Post(() => ran.Add(5));
            Assert.Equal(5, q.Drain(), "all ran");
            Assert.Equal("1,3,5", string.Join(",", ran), "others still ran, in order");
            Assert.Equal(2, failures.Count, "failures reported");
            Assert.True(failures[0] is InvalidOperationException, "first failure");
        }

        [Test]
        public static void QueueFailingErrorHandlerDoesNotBreakIt()
        {
            var q = new MainThreadQueue();
            q.ItemFailed += e => { throw new Exception("handler bug"); };
            int ran = 0;
            q.Post(() => { throw new Exception("x"); });
            q.Post(() => ran++);
            q.Drain();
            Assert.Equal(1, ran, "next item ran");
        }

        [Test]
        public static void QueueItemsPostedWhileDrainingWaitForNextDrain()
        {
            var q = new MainThreadQueue();
            int depth = 0;
            Action chain = null;
            chain = () => { depth++; q.Post(chain); };
            q.Post(chain);
            Assert.Equal(1, q.Drain(), "one per drain");
            Assert.Equal(1, q.Drain(), "then the next");
            Assert.Equal(2, depth, "bounded");
        }

        [Test]
        public static void QueueAcceptsPostsFromManyThreads()
        {
            var q = new MainThreadQueue();
            int count = 0;
            var threads = new List<Thread>();
            for (int t = 0; t < 4; t++)
            {
                var th = new Thread(() => { for (int i = 0; i < 2500; i++) q.Post(() => count++); });
                threads.Add(th);
                th.Start();
            }
            int drained = 0;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (drained < 10000 && DateTime.UtcNow < deadline) drained += q.Drain();
            foreach (var th in threads) th.Join();
            drained += q.Drain();
            Assert.Equal(10000, drained, "drained");
            Assert.Equal(10000, count, "ran");
        }

        [Test]
        public static void LipSyncSamplesAtTheClock()
        {
            var track = new LipSyncTrack();
            var w0 = new double[15];
            var w1 = new double[15];
            var w2 = new double[15];
            w0[10] = 0.0; w1[10] = 1.0; w2[10] = 0.5;
            track.AddVisemes(1, 0, w0);
            track.AddVisemes(1, 1600, w2); // out of order arrival is sorted
            track.AddVisemes(1, 800, w1);
            var dest = new float[15];
            Assert.True(track.Sample(1, 400, dest), "has frame");
            Assert.Near(0.5, dest[10], 1e-6, "interpolated halfway 0→1");
            Assert.True(track.Sample(1, 400, dest, interpolate: false), "has frame");
            Assert.Near(0.0, dest[10], 1e-6, "step: frame at 0");
            Assert.True(track.Sample(1, 1200, dest), "later");
            Assert.Near(0.75, dest[10], 1e-6, "interpolated 1→0.5");
            Assert.Equal(2, track.Count, "the frame at 0 was discarded once passed");
            track.Cancel(1, 800);
            Assert.True(track.Sample(1, 5000, dest), "still frame 800");
            Assert.Near(1.0, dest[10], 1e-6, "frame after valid_through dropped");
            Assert.True(!track.Sample(2, 0, dest), "no frame for turn 2");
            Assert.Equal(0, track.Count, "turn 1 frames dropped once turn 2 plays");
        }

        [Test]
        public static void LipSyncBlendshapeFramesAreSpacedBySampleRate()
        {
            var track = new LipSyncTrack();
            var data = new float[] { 1f, 0f, 0f, 1f, 0.5f, 0.5f };
            var bytes = new byte[data.Length * 4];
            Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
            track.AddBlendshapes(3, 100, 60, 2, 3, bytes, 44100, "arkit");
            Assert.Equal(2, track.Width, "width");
            Assert.Equal("arkit", track.Format, "format");
            var dest = new float[2];
            track.Sample(3, 100 + 734, dest, interpolate: false);
            Assert.Near(1.0, dest[0], 1e-6, "frame 0 until 835");
            track.Sample(3, 100 + 735, dest, interpolate: false);
            Assert.Near(1.0, dest[1], 1e-6, "frame 1 at offset+735");
            track.Sample(3, 100 + 1470, dest, interpolate: false);
            Assert.Near(0.5, dest[0], 1e-6, "frame 2 at offset+1470");
        }

        [Test]
        public static void LipSyncFollowsThePlaybackClock()
        {
            // Audio and visemes of one turn; the weights come from where playback is, not arrival.
            var rb = new AudioRingBuffer(24000, 1, 1000);
            var track = new LipSyncTrack();
            rb.WritePcm16(Ramp(4800, 0), 0, 4800, 2, 0);
            for (int k = 0; k < 10; k++)
            {
                var w = new double[15];
                w[10] = k / 10.0;
                track.AddVisemes(2, k * 480, w);
            }
            var buf = new float[2400];
            rb.Read(buf, 0, 2400, 1);
            Thread.Sleep(150); // the pulled block (100 ms) has played
            var pos = rb.GetPlaybackPosition();
            Assert.Equal(2400L, pos.Offset, "clock at end of block");
            var dest = new float[15];
            Assert.True(track.Sample(pos.Turn, pos.Offset, dest, interpolate: false), "frame");
            Assert.Near(0.5, dest[10], 1e-6, "viseme at 2400 is frame 5");
        }
    }
}
