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

    public static readonly ActivitySource ActivitySource = new(SourceName);

    public Meter Meter { get; } = meterFactory.Create(SourceName);

    public void Dispose() => Meter.Dispose();
}
