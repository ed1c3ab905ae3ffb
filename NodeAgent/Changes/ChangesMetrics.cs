using System.Diagnostics.Metrics;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;

namespace NodeAgent.Changes;

/// <summary>
/// File changes' spans and instruments. Prometheus sees <c>file_events_total{event_type}</c> (the name the original
/// filemon's operators know) and <c>nodemonitor_changes_*</c>: overflows, rescans (by reason), watches, directories
/// not watched, coalesced raw events, the event-to-stored latency, batches by result and store retries, and
/// <c>nodemonitor_spool_file_events</c>.
/// </summary>
internal sealed class ChangesMetrics
{
    public const string StoreActivityName = "changes.store";
    public const string ReconcileActivityName = "changes.reconcile";

    /// <summary>The <c>reason</c>s ChangeDetector counts rescans by.</summary>
    private static readonly string[] RescanReasons = ["overflow", "watch_limit", "watch_error"];

    private readonly Meter _meter;

    public ChangesMetrics(AgentDiagnostics diagnostics)
    {
        _meter = diagnostics.Meter;
        FileEvents = _meter.CreateCounter<long>("file_events", "{event}", "File events seen, by event_type (create, modify, delete, rename, attrib)");
        Overflows = _meter.CreateCounter<long>("nodemonitor.changes.overflows", "{overflow}", "Times the kernel's inotify queue overflowed (each starts a rescan)");
        Rescans = _meter.CreateCounter<long>("nodemonitor.changes.rescans", "{rescan}", "Rescans started because the watch may have missed changes, by reason");
        Coalesced = _meter.CreateCounter<long>("nodemonitor.changes.coalesced", "{event}", "Raw inotify events folded into an event of the same path");
        Latency = _meter.CreateHistogram("nodemonitor.changes.latency", "s", "Time from a change being seen to its event being stored",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });
        Delivery = new DeliveryCounters(
            _meter.CreateCounter<long>("nodemonitor.changes.batches", "{batch}", "Batches of file events by result: stored, failed (rejected by the database), dropped (spool full)"),
            _meter.CreateCounter<long>("nodemonitor.changes.store.retries", "{retry}", "Failed attempts to store a batch of file events that will be retried"),
            DeliveryCounters.CreateStoreDuration(_meter, "nodemonitor.changes.store.duration", "batch of file events"));

        // Counters that move only on trouble are published at 0 from the start: a dashboard or an alert then sees
        // "none" rather than no series at all, and increase() counts the first occurrence too.
        Overflows.Add(0);
        foreach (var reason in RescanReasons)
        {
            Rescans.Add(0, new KeyValuePair<string, object?>("reason", reason));
        }

        Delivery.Retries.Add(0);
    }

    public Counter<long> FileEvents { get; }

    public Counter<long> Overflows { get; }

    public Counter<long> Rescans { get; }

    public Counter<long> Coalesced { get; }

    public Histogram<double> Latency { get; }

    public DeliveryCounters Delivery { get; }

    public void ObserveWatches(Func<int> watches, Func<int> unwatched)
    {
        _meter.CreateObservableGauge("nodemonitor.changes.watches", watches, "{watch}", "inotify watches in use");
        _meter.CreateObservableGauge("nodemonitor.changes.unwatched_directories", unwatched, "{directory}",
            "Directories that could not be watched (watch limit): their changes are found by the periodic scan only");
    }

    /// <summary>What file changes hold in memory besides their spool: the state of every path, and the scan still being compared.</summary>
    public void ObserveHeld(Func<long> stateBytes, Func<long> scanBytes) =>
        _meter.CreateObservableGauge("nodemonitor.changes.held", () => new[]
        {
            new Measurement<long>(stateBytes(), new KeyValuePair<string, object?>("part", "state")),
            new Measurement<long>(scanBytes(), new KeyValuePair<string, object?>("part", "scan")),
        }, "By", "Memory file changes hold: the state of every path (part=state) and the scan whose differences are still being looked at (part=scan)");

    public void ObserveSpool(Func<long> pendingEvents) =>
        _meter.CreateObservableGauge("nodemonitor.spool.file_events", pendingEvents, "{event}", "File events seen but not yet stored");
}
