using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace NodeAgent.Shared.Delivery;

/// <summary>
/// A capability's delivery instruments: records by outcome (tag <c>result</c>), failed attempts that will be retried,
/// and the time each successful store took.
/// </summary>
public sealed record DeliveryCounters(Counter<long> Outcomes, Counter<long> Retries, Histogram<double> StoreDuration)
{
    // From a small batch stored in a millisecond to a first list of a million entries over a slow link.
    private static readonly double[] StoreDurationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

    public static Histogram<double> CreateStoreDuration(Meter meter, string name, string record) =>
        meter.CreateHistogram(name, "s", $"Time to store one {record} (the successful attempt)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = StoreDurationBuckets });
}

/// <summary>
/// The one place where what became of each record is counted and, where an operator must know, logged:
/// <c>stored</c>; <c>dropped</c> (the spool was full); <c>failed</c> (it could not be collected, or the database
/// rejected it for good). Each outcome also feeds the capability's <see cref="DeliveryHealth"/>, what /health reports.
/// </summary>
public sealed partial class DeliveryOutcomes<T>(RecordKind<T> kind, DeliveryCounters counters, ILogger<DeliveryOutcomes<T>> logger, DeliveryHealth? health = null)
    where T : class
{
    private static readonly KeyValuePair<string, object?> StoredTag = new("result", "stored");
    private static readonly KeyValuePair<string, object?> DroppedTag = new("result", "dropped");
    private static readonly KeyValuePair<string, object?> FailedTag = new("result", "failed");

    /// <summary>
    /// A record that will never be stored (dropped, or given up), for a capability whose records build on the ones
    /// before (file events carry the current state forward) and must resynchronise when one is lost.
    /// </summary>
    public event Action<T>? Lost;

    public void Collected() => health?.Collected();

    public void Stored(T record, TimeSpan took)
    {
        counters.Outcomes.Add(1, StoredTag);
        counters.StoreDuration.Record(took.TotalSeconds);
        health?.Stored();
    }

    public void Dropped(T record, SpoolLimits limits)
    {
        counters.Outcomes.Add(1, DroppedTag);
        LogDropped(logger, limits.Capacity, kind.Plural, limits.MaxWeight, kind.WeightUnit, kind.Describe(record));
        Lost?.Invoke(record);
    }

    /// <summary>
    /// A record was not collected because the spool had no room for it (what it holds is being stored, or has not been
    /// tried yet): counted each time, logged at the first of a run of them.
    /// </summary>
    public void NotCollected(SpoolLimits limits, bool firstInARow)
    {
        counters.Outcomes.Add(1, DroppedTag);
        if (firstInARow)
        {
            LogNotCollected(logger, limits.Capacity, kind.Plural, limits.MaxWeight, kind.WeightUnit, kind.Plural);
        }
    }

    /// <summary>The record could not be collected at all (the caller logs why).</summary>
    public void FailedToCollect(Exception error)
    {
        counters.Outcomes.Add(1, FailedTag);
        health?.CollectFailed(error);
    }

    /// <summary>The database rejected the record in a way a retry would meet again: it is given up.</summary>
    public void GivenUp(T record, Exception error)
    {
        counters.Outcomes.Add(1, FailedTag);
        health?.StoreFailed(error);
        LogGivenUp(logger, kind.Describe(record), RetryPolicy.Describe(error));
        Lost?.Invoke(record);
    }

    /// <summary>An attempt to store failed and will be retried.</summary>
    public void WillRetry(Exception error)
    {
        counters.Retries.Add(1);
        health?.StoreFailed(error);
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Spool full (at most {Capacity} {Records} and {MaxWeight} {WeightUnit}): dropped {Record} without storing it")]
    private static partial void LogDropped(ILogger logger, int capacity, string records, long maxWeight, string weightUnit, string record);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Spool full (at most {Capacity} {Records} and {MaxWeight} {WeightUnit}, counting the one to be taken): no new {Taken} taken until what waits is stored")]
    private static partial void LogNotCollected(ILogger logger, int capacity, string records, long maxWeight, string weightUnit, string taken);

    [LoggerMessage(Level = LogLevel.Error, Message = "Gave up storing {Record}: {Reason}")]
    private static partial void LogGivenUp(ILogger logger, string record, string reason);
}
