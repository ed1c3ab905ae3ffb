using System.Diagnostics.Metrics;
using NodeAgent.Shared.Telemetry;

namespace NodeAgent.Insight;

/// <summary>
/// The relabel's instruments: <c>nodemonitor_insight_relabel_steps_total{result}</c> (steps this agent took:
/// <c>relabelling</c>, <c>counting</c>, <c>idle</c>, ... by the phase they left, or <c>failed</c>) and
/// <c>nodemonitor_insight_relabel_pending_changes</c> (template changes the stored labels do not follow yet, as this
/// agent last saw).
/// </summary>
internal sealed class InsightMetrics
{
    private long _pendingChanges;

    public InsightMetrics(AgentDiagnostics diagnostics)
    {
        var meter = diagnostics.Meter;
        Steps = meter.CreateCounter<long>("nodemonitor.insight.relabel.steps", "{step}", "Relabel steps this agent took, by the phase they left the relabel in, or failed");
        meter.CreateObservableGauge("nodemonitor.insight.relabel.pending_changes", () => Interlocked.Read(ref _pendingChanges), "{change}",
            "Template changes the stored labels do not follow yet");
        Steps.Add(0, new KeyValuePair<string, object?>("result", "failed"));
    }

    public Counter<long> Steps { get; }

    public void PendingChanges(long changes) => Interlocked.Exchange(ref _pendingChanges, changes);
}
