using NodeAgent.Shared.Tree;
using System.Diagnostics;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;

namespace NodeAgent.Inventory;

/// <summary>Takes one scan of the monitored directory, with its span and metrics.</summary>
internal sealed class InventoryCollector(AgentSettings settings, TreeScanner scanner, InventoryMetrics metrics, DeliveryOutcomes<ScanRecord> outcomes, ScanFeed feed, TimeProvider time)
{
    private readonly KeyValuePair<string, object?> _nodeTag = new("node", settings.NodeName);

    /// <exception cref="MountPathException">the monitored directory is missing or unreadable</exception>
    /// <remarks>A failed scan (whatever the reason) is counted as <c>failed</c> before the exception leaves.</remarks>
    public ScanRecord Collect(CancellationToken cancellationToken) => Collect(null, cancellationToken);

    /// <param name="segments">where the entries also go, in tree order, while the walk goes on</param>
    internal ScanRecord Collect(ScanSegments? segments, CancellationToken cancellationToken)
    {
        using var activity = AgentDiagnostics.ActivitySource.StartActivity(InventoryMetrics.ScanActivityName);
        activity?.SetTag("node.name", settings.NodeName);
        activity?.SetTag("mount.path", settings.MountPath);
        var collectedAt = time.GetUtcNow();
        try
        {
            var result = scanner.Scan(settings.MountPath, segments, cancellationToken);
            activity?.SetTag("scan.entries", result.Snapshot.Count);
            activity?.SetTag("scan.bytes", result.Snapshot.ApproximateBytes);
            activity?.SetTag("scan.vanished", result.Vanished);
            activity?.SetTag("scan.unreadable", result.Unreadable);
            metrics.ScanDuration.Record(result.Duration.TotalSeconds, _nodeTag);
            metrics.ScanEntries.Record(result.Snapshot.Count, _nodeTag);
            outcomes.Collected();
            feed.Publish(result, collectedAt);
            return new ScanRecord(Guid.CreateVersion7(collectedAt), settings.NodeName, settings.MountPath, collectedAt, result);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            outcomes.FailedToCollect(e);
            throw;
        }
    }
}
