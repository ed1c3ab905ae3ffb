using System.Diagnostics.Metrics;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;

namespace NodeAgent.Processes;

/// <summary>
/// Process events' instruments: <c>process_events_total{process_name}</c> (the name the original procmon's operators
/// know), and <c>nodemonitor_processes_*</c>: lost connector messages, enrichment misses, batches by result, store
/// retries; <c>nodemonitor_spool_process_events</c>.
/// </summary>
internal sealed class ProcessesMetrics
{
    private readonly Meter _meter;

    public ProcessesMetrics(AgentDiagnostics diagnostics)
    {
        _meter = diagnostics.Meter;
        ProcessEvents = _meter.CreateCounter<long>("process_events", "{process}", "Processes kept, by process_name (the Include entry the executable matches, else other)");
        Lost = _meter.CreateCounter<long>("nodemonitor.processes.lost", "{message}", "Connector messages the kernel dropped (receive buffer full, or a gap in its sequence)");
        EnrichmentMisses = _meter.CreateCounter<long>("nodemonitor.processes.enrichment_misses", "{process}", "Kept processes of which something could not be read from /proc (it was gone)");
        Delivery = new DeliveryCounters(
            _meter.CreateCounter<long>("nodemonitor.processes.batches", "{batch}", "Batches of process events by result: stored, failed, dropped"),
            _meter.CreateCounter<long>("nodemonitor.processes.store.retries", "{retry}", "Failed attempts to store a batch of process events that will be retried"),
            DeliveryCounters.CreateStoreDuration(_meter, "nodemonitor.processes.store.duration", "batch of process events"));

        // Published at 0 from the start (see ChangesMetrics): lost messages and retries are otherwise absent until the first one.
        Lost.Add(0);
        Delivery.Retries.Add(0);
    }

    public Counter<long> ProcessEvents { get; }

    public Counter<long> Lost { get; }

    public Counter<long> EnrichmentMisses { get; }

    public DeliveryCounters Delivery { get; }

    public void ObserveSpool(Func<long> pendingRows) =>
        _meter.CreateObservableGauge("nodemonitor.spool.process_events", pendingRows, "{process}", "Process events taken but not yet stored");
}
