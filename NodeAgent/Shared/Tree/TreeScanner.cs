using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Native;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// Walks a directory tree and records every entry below it with its relative path (exact bytes),
/// type, size, modification time and mode, in tree order. It never follows symbolic links (it records
/// them), only ever opens directories (never FIFOs, sockets or devices), never writes, and goes on past
/// entries that vanish or cannot be read, counting them. The subtrees of the top-level directories are
/// walked in parallel, one walker per core (at most four).
/// </summary>
public sealed partial class TreeScanner(ILogger<TreeScanner> logger, long collectAfterBytes = TreeScanner.CollectAfterBytes, int collectEveryMilliseconds = TreeScanner.CollectEveryMilliseconds)
{
    /// <summary>A scan holding this much makes the next scan start with a full collection (see <see cref="LetEarlierScansGo"/>).</summary>
    public const long CollectAfterBytes = 4L << 20;

    /// <summary>At most one such collection in this time, whatever the scan interval.</summary>
    public const int CollectEveryMilliseconds = 5000;

    private long _previousScanBytes;
    private long _lastCollected = -1;

    private const int MaxLoggedProblems = 10;
    private static readonly int DirectoryOpenFlags = MountDirectory.DirectoryFlags | NativeMethods.ONoFollow;

    /// <summary>Deeper directories are recorded but not descended into (each level costs stack).</summary>
    public const int MaxDepth = 1024;
    private const uint StatxFields = NativeMethods.StatxType | NativeMethods.StatxMode | NativeMethods.StatxSize
        | NativeMethods.StatxMtime | NativeMethods.StatxIno;

    private static readonly int Parallelism = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <exception cref="MountPathException">the directory itself is missing, not a directory, or unreadable</exception>
    public ScanResult Scan(string mountPath, CancellationToken cancellationToken) => Scan(mountPath, null, cancellationToken);

    /// <param name="segments">where the entries go in tree order while the walk goes on (completed when it ends, with its error if it fails)</param>
    /// <exception cref="MountPathException">the directory itself is missing, not a directory, or unreadable</exception>
    internal ScanResult Scan(string mountPath, ScanSegments? segments, CancellationToken cancellationToken)
    {
        try
        {
            // The walk completes the segments itself once it has handed out (and hashed) the last one.
            return Walk(mountPath, segments, cancellationToken);
        }
        catch (Exception e)
        {
            segments?.Complete(e);
            throw;
        }
    }

    private ScanResult Walk(string mountPath, ScanSegments? published, CancellationToken cancellationToken)
    {
        LetEarlierScansGo();
        var started = Stopwatch.GetTimestamp();
        var problems = new ProblemLog(logger);
        var rootFd = MountDirectory.Open(mountPath);
        try
        {
            var rootIdentity = Identity(rootFd);
            var main = new Walker(problems, rootIdentity, cancellationToken);

            // The root's own entries; its subdirectories become work items, each an independent subtree.
            var subtrees = new List<(byte[] Name, (uint, uint, ulong) Identity)>();
            main.ListRoot(rootFd, (name, identity) => subtrees.Add((name, identity)));

            var segments = new TreeSnapshot.Segment?[subtrees.Count];
            var walkers = Enumerable.Range(0, Math.Min(Parallelism, subtrees.Count))
                .Select(i => i == 0 ? main : new Walker(problems, rootIdentity, cancellationToken)).ToArray();
            var next = -1;
            var publishedItems = 0;
            var publishing = new Lock();
            using var hasher = new TreeSnapshot.Hasher();
            void HandOut(TreeSnapshot.Segment segment)
            {
                hasher.Append(segment);
                published?.Publish(segment);
            }

            void Work(Walker walker)
            {
                for (var item = Interlocked.Increment(ref next); item < subtrees.Count; item = Interlocked.Increment(ref next))
                {
                    var (name, identity) = subtrees[item];
                    var start = walker.Entries.Mark();
                    walker.Subtree(rootFd, name, identity);
                    var segment = walker.Entries.Since(start);

                    // In tree order: whichever walker completes the next subtree in line hashes and publishes every one done.
                    lock (publishing)
                    {
                        segments[item] = segment;
                        for (; publishedItems < subtrees.Count && segments[publishedItems] is { } done; publishedItems++)
                        {
                            HandOut(main.RootRuns[publishedItems]);
                            HandOut(done);
                        }
                    }
                }
            }

            if (walkers.Length > 1)
            {
                var helpers = walkers.Skip(1).Select(w => Task.Factory.StartNew(() => Work(w), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
                try
                {
                    Work(main);
                }
                finally
                {
                    // The helpers use the root's descriptor: it is closed only once they are all done.
                    Task.WaitAll(helpers.Select(h => h.ContinueWith(_ => { }, TaskScheduler.Default)).ToArray());
                }

                Task.WaitAll(helpers);
            }
            else if (walkers.Length == 1)
            {
                Work(main);
            }

            // Tree order: each run of top-level entries, then the subtree of the directory that ends it.
            var ordered = new List<TreeSnapshot.Segment>(2 * subtrees.Count + 1);
            for (var item = 0; item < subtrees.Count; item++)
            {
                ordered.Add(main.RootRuns[item]);
                ordered.Add(segments[item]!.Value);
            }

            ordered.Add(main.RootRuns[^1]);
            HandOut(ordered[^1]);
            published?.Complete();
            problems.Summarize(mountPath);
            var snapshot = new TreeSnapshot(ordered, hasher.Finish());
            Interlocked.Exchange(ref _previousScanBytes, snapshot.ApproximateBytes);
            return new ScanResult(snapshot, walkers.Sum(w => w.Vanished), walkers.Sum(w => w.Unreadable), Stopwatch.GetElapsedTime(started));
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is OperationCanceledException))
        {
            throw new OperationCanceledException(cancellationToken);
        }
        finally
        {
            NativeMethods.Close(rootFd);
        }
    }

    /// <summary>
    /// A large scan lives for seconds (stored, compared with the file-change state), long enough for the GC to move it
    /// to its oldest generation, where it stays after it is let go until that generation's own budget runs out: with
    /// scans of a million entries every few seconds, several dead ones (tens of MiB each) were held at once. By the time
    /// the next scan starts the previous one is normally done with, so a full, compacting collection then gives its
    /// memory back. Blocking, but rare: only after a scan of <see cref="CollectAfterBytes"/> or more, and at most once
    /// every <see cref="CollectEveryMilliseconds"/> ms.
    /// </summary>
    private void LetEarlierScansGo()
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastCollected);
        if (Interlocked.Read(ref _previousScanBytes) < collectAfterBytes || (last >= 0 && now - last < collectEveryMilliseconds)
            || Interlocked.CompareExchange(ref _lastCollected, now, last) != last)
        {
            return;
        }

        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    private static unsafe (uint, uint, ulong) Identity(int fd)
    {
        NativeMethods.Statx status;
        byte empty = 0;
        if (NativeMethods.StatX(fd, &empty, NativeMethods.AtEmptyPath, NativeMethods.StatxIno, &status) != 0)
        {
            throw new MountPathException($"Agent:MountPath cannot be examined: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}.");
        }

        return (status.DeviceMajor, status.DeviceMinor, status.Inode);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {Path}: {Reason}")]
    private static partial void LogSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} more entries under {MountPath} were skipped in this scan")]
    private static partial void LogMoreProblems(ILogger logger, int count, string mountPath);
}
