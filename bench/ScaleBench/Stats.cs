using NodeAgent.Shared.Delivery;

namespace ScaleBench;

/// <summary>What one kind of store call did within one phase: latency per successful call, items, failures.</summary>
internal sealed class StoreStats
{
    private readonly Lock _gate = new();
    private readonly List<double> _milliseconds = [];
    private readonly List<double> _lagSeconds = [];
    private readonly Dictionary<string, int> _errors = [];

    public long Calls { get; private set; }

    public long Items { get; private set; }

    public long Retried { get; private set; }

    public long Dropped { get; private set; }

    public void Stored(double milliseconds, long items, double? lagSeconds)
    {
        lock (_gate)
        {
            Calls++;
            Items += items;
            _milliseconds.Add(milliseconds);
            if (lagSeconds is { } lag)
            {
                _lagSeconds.Add(lag);
            }
        }
    }

    public void Failed(Exception e, bool willRetry)
    {
        lock (_gate)
        {
            var reason = RetryPolicy.Describe(e);
            _errors[reason] = _errors.GetValueOrDefault(reason) + 1;
            if (willRetry)
            {
                Retried++;
            }
            else
            {
                Dropped++;
            }
        }
    }

    public Percentiles Latency()
    {
        lock (_gate)
        {
            return Percentiles.Of(_milliseconds);
        }
    }

    public Percentiles Lag()
    {
        lock (_gate)
        {
            return Percentiles.Of(_lagSeconds);
        }
    }

    public IReadOnlyList<KeyValuePair<string, int>> Errors()
    {
        lock (_gate)
        {
            return [.. _errors.OrderByDescending(e => e.Value)];
        }
    }
}

internal readonly record struct Percentiles(int Count, double P50, double P90, double P99, double Max, double Mean)
{
    public static Percentiles Of(List<double> values)
    {
        if (values.Count == 0)
        {
            return default;
        }

        var sorted = values.ToArray();
        Array.Sort(sorted);
        double At(double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
        return new Percentiles(sorted.Length, At(0.5), At(0.9), At(0.99), sorted[^1], sorted.Average());
    }
}

/// <summary>The store calls of one phase, by kind, and the phase's wall time.</summary>
internal sealed class Phase(string name)
{
    public const string ScanNewList = "scan, new list";
    public const string ScanSameList = "scan, list unchanged";
    public const string FileEvents = "file events";
    public const string ProcessEvents = "process events";

    private readonly Dictionary<string, StoreStats> _kinds = [];

    public string Name => name;

    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;

    public DateTimeOffset? Ended { get; set; }

    public TimeSpan Elapsed => (Ended ?? DateTimeOffset.UtcNow) - Started;

    /// <summary>Execs among the process rows stored (the rest are exits completing them).</summary>
    public long ProcessExecs;

    public StoreStats this[string kind]
    {
        get
        {
            lock (_kinds)
            {
                if (!_kinds.TryGetValue(kind, out var stats))
                {
                    _kinds[kind] = stats = new StoreStats();
                }

                return stats;
            }
        }
    }

    public IReadOnlyList<(string Kind, StoreStats Stats)> Kinds()
    {
        lock (_kinds)
        {
            string[] order = [ScanNewList, ScanSameList, FileEvents, ProcessEvents];
            return [.. _kinds.OrderBy(k => Array.IndexOf(order, k.Key)).Select(k => (k.Key, k.Value))];
        }
    }
}
