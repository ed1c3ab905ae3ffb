using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Changes;

/// <summary>
/// Runs the <see cref="ChangeDetector"/> on a thread of its own: starts from the state stored in the database, watches,
/// reconciles with a scan of its own and then with every scan the inventory publishes (and rescans at once when the
/// watch lost events), and hands each round's events to the spool as one batch. It never waits for the database
/// once started: the store loop does. When a batch is lost (spool full, or rejected for good) the stored state no
/// longer follows the events, so once the spool is empty the state is read again and a rescan records the difference.
/// </summary>
internal sealed partial class ChangeLoop : BackgroundService
{
    /// <summary>Longest wait for raw events while paths wait to be looked at: how soon a quiet path's burst is seen to have ended.</summary>
    private const int PollMilliseconds = 10;

    /// <summary>Longest wait for raw events while nothing waits: how soon a scan, a rescan or a resync is taken up.</summary>
    private const int IdlePollMilliseconds = 100;

    /// <summary>
    /// Shortest time from one read of raw events to the next: under load the loop wakes once per interval and takes
    /// everything the kernel queued meanwhile (a few dozen events at 1,000 writes/s), instead of waking for every write.
    /// </summary>
    private const int ReadIntervalMilliseconds = 10;

    /// <summary>
    /// How long the first event of a batch waits for more before the batch goes to the spool, while more paths are
    /// waiting to be looked at: under a steady stream of changes a batch holds this long's events (one transaction, a
    /// few statements, whatever its size) instead of whatever came since the last store.
    /// </summary>
    private static readonly TimeSpan BatchDelay = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// Events per batch at most (one transaction each): a first scan of a large tree is stored in many. A batch also
    /// holds at most a quarter of the spool's memory bound, and new batches are made only while the spool is less than
    /// half full, so that the spool never has to drop one. At five hundred, the arrays a batch is stored with stay
    /// below the large object heap, so storing a first scan of a million files leaves no large garbage behind.
    /// </summary>
    private const int BatchMaxEvents = 500;
    /// <summary>Batches in the spool (the one being stored among them) while more of what a scan found is looked at.</summary>
    private const int FoundBatchesAhead = 1;
    /// <summary>
    /// Bytes of events (snapshot contents included) that what a scan found may add to a batch. A first start keeps the
    /// content of every source file it finds; a quarter of the spool per batch (4 MiB) put several MiB of contents in
    /// flight at once, each living just long enough to reach the GC's oldest generation: at 200,000 files the peak was
    /// 65 MiB, with 1 MiB batches 63 (and the baseline 15 % slower).
    /// </summary>
    private const long FoundBatchMaxBytes = 1L << 20;

    private readonly AgentSettings _agent;
    private readonly ChangeDetector _detector;
    private readonly ChangeStore _store;
    private readonly Spool<FileEventBatch> _spool;
    private readonly TreeScanner _scanner;
    private readonly RetryPolicy _retry;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<ChangeLoop> _logger;
    private ScanResult? _latestScan;
    private volatile bool _resync;
    private int _scanning;

    public ChangeLoop(
        AgentSettings agent,
        ChangeDetector detector,
        ChangeStore store,
        Spool<FileEventBatch> spool,
        DeliveryOutcomes<FileEventBatch> outcomes,
        ScanFeed feed,
        TreeScanner scanner,
        RetryPolicy retry,
        IHostApplicationLifetime lifetime,
        ILogger<ChangeLoop> logger)
    {
        _agent = agent;
        _detector = detector;
        _store = store;
        _spool = spool;
        _scanner = scanner;
        _retry = retry;
        _lifetime = lifetime;
        _logger = logger;
        // Only the latest scan is worth comparing: an older one waiting would only hold its memory (a million entries
        // take some tens of MB even packed) and find less.
        feed.Subscribe((scan, _) => Interlocked.Exchange(ref _latestScan, scan));
        outcomes.Lost += _ => _resync = true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await _lifetime.WaitForStartedAsync(stoppingToken))
        {
            return;
        }

        var stored = await LoadStateAsync(stoppingToken);
        if (stored is null)
        {
            return;
        }

        await Task.Factory.StartNew(() => Run(stored, stoppingToken), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Run(FileStateTable stored, CancellationToken stoppingToken)
    {
        try
        {
            _detector.Start(stored);
        }
        catch (Exception e) when (e is MountPathException or InvalidOperationException)
        {
            LogCannotWatch(_logger, e.Message);
            return;
        }

        LogWatching(_logger, _agent.MountPath, _detector.Watches, stored.Count);
        Scan(stoppingToken);
        var buffer = new byte[256 * 1024];
        var rescanWanted = false;
        long batchStarted = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var idle = _detector.PendingPaths == 0 && _detector.RecordedEvents == 0 && !rescanWanted;
                var read = _detector.Read(buffer, idle ? IdlePollMilliseconds : PollMilliseconds);
                var readAt = Stopwatch.GetTimestamp();
                _detector.OnEvents(buffer.AsSpan(0, read));

                if (Interlocked.Exchange(ref _latestScan, null) is { } scan)
                {
                    _detector.Reconcile(scan.Snapshot);
                }

                // A rescan asked for while one is under way runs after it: the running one may have passed the change.
                rescanWanted |= _detector.TakeRescanRequest();
                if (rescanWanted && Volatile.Read(ref _scanning) == 0)
                {
                    rescanWanted = false;
                    Scan(stoppingToken);
                }

                // Back-pressure: while the database lags, changed paths wait here (folding further changes of the same
                // path) rather than as events in the spool, so an outage costs memory per path, not per change. What a
                // scan found (a first start's whole tree) is looked at only as fast as it is stored: while at most one
                // batch waits besides the one being stored, so that it never fills the spool, and into batches of a MiB.
                if (_spool.Weight < _spool.Limits.MaxWeight / 2 && _spool.Count < _spool.Limits.Capacity / 2)
                {
                    _detector.ResolveDue(BatchMaxEvents, _spool.Limits.MaxWeight / 4,
                        foundMaxBytes: _spool.Count <= FoundBatchesAhead ? FoundBatchMaxBytes : 0);
                }

                // Group commit: a batch goes to the spool when nothing is being stored, else it grows (to its bounds)
                // until the store in flight is done, so that the batches' size follows the database's pace. While
                // more paths are on their way it also waits BatchDelay from its first event.
                if (_detector.RecordedEvents == 0)
                {
                    batchStarted = 0;
                }
                else if (batchStarted == 0)
                {
                    batchStarted = readAt;
                }

                if (_detector.RecordedEvents >= BatchMaxEvents || _detector.RecordedBytes >= _spool.Limits.MaxWeight / 4
                    || (_spool.Count == 0 && (_detector.PendingPaths == 0 || Stopwatch.GetElapsedTime(batchStarted) >= BatchDelay)))
                {
                    Flush();
                    batchStarted = 0;
                }

                if (_resync && _spool.Count == 0)
                {
                    Resync(stoppingToken);
                }

                // Under load, let the kernel queue the next interval's events rather than waking for each (unless the
                // read filled half the buffer: then the loop reads on at once, so that the queue does not overflow).
                if (read > 0 && read < buffer.Length / 2)
                {
                    var rest = ReadIntervalMilliseconds - (int)Stopwatch.GetElapsedTime(readAt).TotalMilliseconds;
                    if (rest > 0)
                    {
                        stoppingToken.WaitHandle.WaitOne(rest);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            LogWatchFailed(_logger, e);
        }
        finally
        {
            // What the watch saw but was not yet looked at is looked at now, so that the store loop's last pass can store
            // it (what a scan found and is not looked at yet is left to the next start's scan: it may be a whole tree).
            _detector.ResolveDue(all: true);
            Flush();
            _detector.Dispose();
        }
    }

    private void Flush()
    {
        if (_detector.TakeBatch() is { } batch)
        {
            _spool.Add(batch);
        }
    }

    /// <summary>A full walk in the background; its result is reconciled on the loop's thread. One at a time.</summary>
    private void Scan(CancellationToken stoppingToken)
    {
        if (Interlocked.Exchange(ref _scanning, 1) == 1)
        {
            return;
        }

        _ = Task.Run(() =>
        {
            try
            {
                Interlocked.Exchange(ref _latestScan, _scanner.Scan(_agent.MountPath, stoppingToken));
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception e)
            {
                LogScanFailed(_logger, e.Message);
            }
            finally
            {
                Volatile.Write(ref _scanning, 0);
            }
        }, CancellationToken.None);
    }

    private void Resync(CancellationToken stoppingToken)
    {
        _resync = false;
        _detector.ForgetState();
        var stored = LoadStateAsync(stoppingToken).GetAwaiter().GetResult();
        if (stored is null)
        {
            return;
        }

        _detector.Reload(stored);
        LogResync(_logger, stored.Count);
        Scan(stoppingToken);
    }

    /// <summary>The stored state, retried (<see cref="RetryPolicy"/>) until the database answers; null on shutdown.</summary>
    private async Task<FileStateTable?> LoadStateAsync(CancellationToken stoppingToken)
    {
        for (var failures = 1; ; failures++)
        {
            try
            {
                return await _store.LoadStateAsync(_agent.NodeName, _agent.MountPath, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return null;
            }
            catch (Exception e)
            {
                var delay = _retry.NextDelay(failures);
                LogLoadFailed(_logger, _agent.DatabaseDescription, RetryPolicy.Describe(e), delay.TotalSeconds);
                try
                {
                    await _retry.DelayAsync(delay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Watching {MountPath} for changes: {Watches} directories watched, {Known} paths known from the database")]
    private static partial void LogWatching(ILogger logger, string mountPath, int watches, int known);

    [LoggerMessage(Level = LogLevel.Error, Message = "File changes are not watched: {Reason}. The inventory goes on")]
    private static partial void LogCannotWatch(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Watching for file changes stopped unexpectedly; the inventory goes on")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A scan for file changes failed: {Reason}")]
    private static partial void LogScanFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Could not read the stored state of the monitored directory from PostgreSQL at {Database}: {Reason}; file changes are recorded once it answers (retrying in {DelaySeconds:0.0} s)")]
    private static partial void LogLoadFailed(ILogger logger, string database, string reason, double delaySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "File events were lost before they were stored; read the stored state again ({Known} paths) and rescanning to record the difference")]
    private static partial void LogResync(ILogger logger, int known);
}
