using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Inventory;

/// <summary>The inventory when the agent runs once: one scan, stored with the agent's retry policy (a few attempts).</summary>
internal sealed partial class ScanOnce(
    AgentSettings settings,
    InventoryCollector collector,
    InventoryStore store,
    RetryPolicy retry,
    DeliveryOutcomes<ScanRecord> outcomes,
    ILogger<ScanOnce> logger) : IRunOnceJob
{
    public const int Attempts = 3;

    public async Task<bool> RunAsync(CancellationToken cancellationToken)
    {
        // The walk starts first; connecting and migrating overlap it, and so does copying the entries walked so far.
        var segments = new ScanSegments();
        var walk = Task.Run(() => collector.Collect(segments, cancellationToken), cancellationToken);
        var prepared = store.PrepareAsync(cancellationToken);
        var staging = store.StageAsync(settings.NodeName, segments, prepared, cancellationToken);
        ScanRecord scan;
        try
        {
            scan = await walk;
        }
        catch
        {
            // The walk's error ends the copy too; it is the walk's that is reported.
            _ = DropAsync(staging);
            throw;
        }

        try
        {
            await prepared;
        }
        catch (Exception)
        {
            // Whatever it was, the first store attempt below meets it again and reports it.
        }

        InventoryStore.StagedList? staged = null;
        try
        {
            staged = await staging;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (prepared.IsCompletedSuccessfully)
            {
                // Otherwise the database could not be reached or migrated: the store attempts below say so.
                LogNotStaged(logger, RetryPolicy.Describe(e));
            }
        }

        var took = TimeSpan.Zero;
        var (error, attempts) = await retry.TryAsync(
            async ct =>
            {
                var started = Stopwatch.GetTimestamp();
                if (Interlocked.Exchange(ref staged, null) is { } copied)
                {
                    await store.StoreAsync(scan, copied, ct);
                }
                else
                {
                    await store.StoreAsync(scan, ct);
                }

                took = Stopwatch.GetElapsedTime(started);
            },
            Attempts,
            cancellationToken);
        if (error is null)
        {
            outcomes.Stored(scan, took);
            return true;
        }

        LogGaveUp(logger, settings.DatabaseDescription, attempts, RetryPolicy.Describe(error));
        return false;
    }

    private static async Task DropAsync(Task<InventoryStore.StagedList> staging)
    {
        try
        {
            await (await staging).DisposeAsync();
        }
        catch (Exception)
        {
            // Nothing was stored from it, and the transaction it held is rolled back with its connection.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The entries were not copied while the tree was walked ({Reason}): the scan is stored after the walk instead")]
    private static partial void LogNotStaged(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not store the scan in PostgreSQL at {Database} after {Attempts} attempts: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string database, int attempts, string reason);
}
