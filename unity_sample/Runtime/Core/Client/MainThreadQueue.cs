using System;
using System.Collections.Concurrent;
using System.Threading;

namespace ConvaiBridge.Client
{
    /// <summary>
    /// Work posted from the network thread, run on the game's main thread by Drain() (called from
    /// Update() or Poll()). Each item runs in its own try/catch: one throwing handler is reported and
    /// the rest still run, so a bug in game code never stalls the conversation.
    /// </summary>
    public sealed class MainThreadQueue
    {
        private readonly ConcurrentQueue<Action> _items = new ConcurrentQueue<Action>();
        private int _count;

        /// <summary>Called with each exception a work item throws (on the draining thread).</summary>
        public event Action<Exception> ItemFailed;

        public int Count { get { return Volatile.Read(ref _count); } }

        /// <summary>Safe from any thread.</summary>
        public void Post(Action item)
        {
            if (item == null) return;
            _items.Enqueue(item);
            Interlocked.Increment(ref _count);
        }

        /// <summary>
        /// Run queued items. Items posted while draining wait for the next call, so a handler that posts
        /// cannot keep a frame busy forever. Returns how many ran (including ones that threw).
        /// </summary>
        public int Drain(int maxItems = int.MaxValue)
        {
            int budget = Math.Min(maxItems, Volatile.Read(ref _count));
            int ran = 0;
            Action item;
            while (ran < budget && _items.TryDequeue(out item))
            {
                Interlocked.Decrement(ref _count);
                ran++;
                try
                {
                    item();
                }
                catch (Exception e)
                {
                    var handler = ItemFailed;
                    if (handler == null) continue;
                    try { handler(e); }
                    catch (Exception) { /* a failing error handler must not break the queue either */ }
                }
            }
            return ran;
        }
    }
}
