using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace NodeAgent.Shared.Telemetry;

/// <summary>
/// The agent's one ActivitySource and one Meter, under which every capability creates its spans and instruments
/// (each capability keeps its own names in its own metrics class). Prometheus sees the instruments as
/// <c>nodemonitor_*</c>.
/// </summary>
public sealed class AgentDiagnostics(IMeterFactory meterFactory) : IDisposable
{
    public const string SourceName = "NodeMonitor.NodeAgent";

    /// <summary>
    /// Label sets each metric keeps. OpenTelemetry sets aside room for 2,000 per metric up front: about 10 MiB for the
    /// agent's 70 metrics, a sixth of its whole footprint at 200,000 files. Every label the agent and the framework
    /// give is bounded far below this (the widest, <c>process_events_total</c>, by the Include entries + 2); sets
    /// beyond it are counted in one <c>otel_metric_overflow="true"</c> series, so no count is lost.
    /// </summary>
    public const int SeriesPerMetric = 256;

    public static readonly ActivitySource ActivitySource = new(SourceName);

    public Meter Meter { get; } = meterFactory.Create(SourceName);

    public void Dispose() => Meter.Dispose();
}
