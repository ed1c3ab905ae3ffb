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
    public const string SpooledScansName = "nodemonitor.spool.scans";

    private readonly Meter _meter;

    public InventoryMetrics(AgentDiagnostics diagnostics)
    {
        _meter = diagnostics.Meter;
        ScanDuration = _meter.CreateHistogram<double>(ScanDurationName, "s", "Time to walk the monitored directory");
        ScanEntries = _meter.CreateGauge<long>(ScanEntriesName, "{entry}", "Entries found by the latest scan");
        Delivery = new DeliveryCounters(
            _meter.CreateCounter<long>(ScansName, "{scan}", "Scans by result: stored, failed (could not scan, or rejected by the database), dropped (spool full)"),
            _meter.CreateCounter<long>(StoreRetriesName, "{retry}", "Failed attempts to store a scan that will be retried"));
    }

    public Histogram<double> ScanDuration { get; }

    public Gauge<long> ScanEntries { get; }

    public DeliveryCounters Delivery { get; }

    public void ObserveSpool(Func<int> pendingScans) =>
        _meter.CreateObservableGauge(SpooledScansName, pendingScans, "{scan}", "Scans taken but not yet stored");
}
