using Microsoft.Extensions.Logging;
using NodeAgent.Configuration;
using NodeAgent.Telemetry;

namespace NodeAgent.Storage;

/// <summary>
/// Scans taken but not yet stored, oldest first, held in memory while the database cannot be reached.
/// Bounded by <c>Agent:SpoolCapacity</c> scans and by <c>Agent:SpoolMaxEntries</c> entries held in
/// distinct lists (consecutive unchanged scans share one list, so they cost a few hundred bytes
/// each); past either bound the oldest waiting scan is dropped, logged and counted.
/// </summary>
public sealed partial class ScanSpool
{
    private readonly Lock _lock = new();
    private readonly LinkedList<ScanRecord> _pending = new();
    private readonly Dictionary<Inventory.InventorySnapshot, int> _snapshotUses = new(ReferenceEqualityComparer.Instance);
    private readonly SemaphoreSlim _signal = new(0);
    private readonly int _capacity;
    private readonly long _maxEntries;
    private readonly AgentTelemetry _telemetry;
    private readonly ILogger<ScanSpool> _logger;
    private ScanRecord? _inFlight;
    private long _retainedEntries;

    public ScanSpool(AgentSettings settings, AgentTelemetry telemetry, ILogger<ScanSpool> logger)
    {
        _capacity = settings.SpoolCapacity;
        _maxEntries = settings.SpoolMaxEntries;
        _telemetry = telemetry;
        _logger = logger;
        telemetry.ObserveSpool(() => Count);
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    public long RetainedEntries
    {
        get
        {
            lock (_lock)
            {
                return _retainedEntries;
            }
        }
    }

    public void Add(ScanRecord scan)
    {
        lock (_lock)
        {
            if (_pending.Last?.Value is { } previous
                && !ReferenceEquals(previous.Result.Snapshot, scan.Result.Snapshot)
                && previous.Result.Snapshot.ContentHash.AsSpan().SequenceEqual(scan.Result.Snapshot.ContentHash))
            {
                scan = scan with { Result = scan.Result with { Snapshot = previous.Result.Snapshot } };
            }

            Retain(scan);
            _pending.AddLast(scan);
            while (_pending.Count > _capacity || (_retainedEntries > _maxEntries && _pending.Count > 1))
            {
                var victim = _pending.First!;
                if (ReferenceEquals(victim.Value, _inFlight))
                {
                    victim = victim.Next!;
                }

                if (victim == _pending.Last)
                {
                    break;
                }

                _pending.Remove(victim);
                Release(victim.Value);
                _telemetry.Scans.Add(1, new KeyValuePair<string, object?>("result", "dropped"));
                LogDropped(_logger, victim.Value.NodeName, victim.Value.CollectedAt, _capacity, _maxEntries);
            }
        }

        _signal.Release();
    }

    /// <summary>Waits for the oldest waiting scan and returns it without removing it.</summary>
    public async Task<ScanRecord> PeekAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_pending.First is { } first)
                {
                    _inFlight = first.Value;
                    return first.Value;
                }
            }

            await _signal.WaitAsync(cancellationToken);
        }
    }

    public bool TryPeek(out ScanRecord? scan)
    {
        lock (_lock)
        {
            scan = _inFlight = _pending.First?.Value;
            return scan is not null;
        }
    }

    /// <summary>Removes a scan once it is stored.</summary>
    public void Complete(ScanRecord scan)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_inFlight, scan))
            {
                _inFlight = null;
            }

            if (_pending.Remove(scan))
            {
                Release(scan);
            }
        }
    }

    private void Retain(ScanRecord scan)
    {
        var snapshot = scan.Result.Snapshot;
        if (_snapshotUses.TryGetValue(snapshot, out var uses))
        {
            _snapshotUses[snapshot] = uses + 1;
        }
        else
        {
            _snapshotUses[snapshot] = 1;
            _retainedEntries += snapshot.Count;
        }
    }

    private void Release(ScanRecord scan)
    {
        var snapshot = scan.Result.Snapshot;
        var uses = _snapshotUses[snapshot] - 1;
        if (uses == 0)
        {
            _snapshotUses.Remove(snapshot);
            _retainedEntries -= snapshot.Count;
        }
        else
        {
            _snapshotUses[snapshot] = uses;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Spool full (at most {Capacity} scans and {MaxEntries} entries): dropped the scan of node {NodeName} collected at {CollectedAt:o} without storing it")]
    private static partial void LogDropped(ILogger logger, string nodeName, DateTimeOffset collectedAt, int capacity, long maxEntries);
}
