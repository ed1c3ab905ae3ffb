using System.Diagnostics.Metrics;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;

namespace NodeAgent.Inventory;

/// <summary>
/// The inventory's spans and instruments. Prometheus sees them as <c>nodemonitor_scan_duration_seconds</c>,
/// <c>nodemonitor_scans_total</c>, <c>nodemonitor_scan_entries</c>, <c>nodemonitor_store_retries_total</c> and
/// <c>nodemonitor_spool_scans</c>.
/// </summary>
public sealed class InventoryMetrics
{
    public const string ScanActivityName = "inventory.scan";
    public const string StoreActivityName = "inventory.store";

    public const string ScanDurationName = "nodemonitor.scan.duration";
    public const string ScanEntriesName = "nodemonitor.scan.entries";
    public const string ScansName = "nodemonitor.scans";
    public const string StoreRetriesName = "nodemonitor.store.retries";
    public const string StoreDurationName = "nodemonitor.store.duration";
    public const string SpooledScansName = "nodemonitor.spool.scans";

    private readonly Meter _meter;

    public InventoryMetrics(AgentDiagnostics diagnostics)
    {
        _meter = diagnostics.Meter;
        // Without advice the SDK's default boundaries (0, 5, 10, 25 ... 10000) would put every ordinary scan in the
        // first bucket and make any quantile of it meaningless.
        ScanDuration = _meter.CreateHistogram(ScanDurationName, "s", "Time to walk the monitored directory",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] });
        ScanEntries = _meter.CreateGauge<long>(ScanEntriesName, "{entry}", "Entries found by the latest scan");
        Delivery = new DeliveryCounters(
            _meter.CreateCounter<long>(ScansName, "{scan}", "Scans by result: stored, failed (could not scan, or rejected by the database), dropped (spool full)"),
            _meter.CreateCounter<long>(StoreRetriesName, "{retry}", "Failed attempts to store a scan that will be retried"),
            DeliveryCounters.CreateStoreDuration(_meter, StoreDurationName, "scan"));

        // Published at 0 from the start (see ChangesMetrics).
        Delivery.Retries.Add(0);
    }

    public Histogram<double> ScanDuration { get; }

    public Gauge<long> ScanEntries { get; }

    public DeliveryCounters Delivery { get; }

    public void ObserveSpool(Func<int> pendingScans) =>
        _meter.CreateObservableGauge(SpooledScansName, pendingScans, "{scan}", "Scans taken but not yet stored");
}
