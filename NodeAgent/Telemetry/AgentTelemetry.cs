using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace NodeAgent.Telemetry;

/// <summary>
/// The agent's one ActivitySource and one Meter, and every metric name in one place.
/// Prometheus sees them as <c>nodemonitor_scan_duration_seconds</c>, <c>nodemonitor_scans_total</c>, ...
/// </summary>
public sealed class AgentTelemetry : IDisposable
{
    public const string SourceName = "NodeMonitor.NodeAgent";
    public const string ScanActivityName = "inventory.scan";
    public const string StoreActivityName = "inventory.store";

    public const string ScanDurationName = "nodemonitor.scan.duration";
    public const string ScanEntriesName = "nodemonitor.scan.entries";
    public const string ScansName = "nodemonitor.scans";
    public const string StoreRetriesName = "nodemonitor.store.retries";
    public const string SpooledScansName = "nodemonitor.spool.scans";

    public static readonly ActivitySource ActivitySource = new(SourceName);

    private readonly Meter _meter;

    public AgentTelemetry(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(SourceName);
        ScanDuration = _meter.CreateHistogram<double>(ScanDurationName, "s", "Time to walk the monitored directory");
        ScanEntries = _meter.CreateGauge<long>(ScanEntriesName, "{entry}", "Entries found by the latest scan");
        Scans = _meter.CreateCounter<long>(ScansName, "{scan}", "Scans by result: stored, failed (could not scan), dropped (spool full)");
        StoreRetries = _meter.CreateCounter<long>(StoreRetriesName, "{retry}", "Failed attempts to store a scan that will be retried");
    }

    public void ObserveSpool(Func<int> pendingScans) =>
        _meter.CreateObservableGauge(SpooledScansName, pendingScans, "{scan}", "Scans taken but not yet stored");

    public Histogram<double> ScanDuration { get; }

    public Gauge<long> ScanEntries { get; }

    public Counter<long> Scans { get; }

    public Counter<long> StoreRetries { get; }

    public void Dispose() => _meter.Dispose();
}
