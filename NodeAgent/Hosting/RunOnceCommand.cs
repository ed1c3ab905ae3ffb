using Microsoft.Extensions.Logging;
using NodeAgent.Configuration;
using NodeAgent.Storage;

namespace NodeAgent.Hosting;

/// <summary><c>Agent:RunOnce=true</c>: scan once, store, and report success through the exit code.</summary>
public sealed partial class RunOnceCommand(AgentSettings settings, InventoryCollector collector, InventoryStore store, TimeProvider time, ILogger<RunOnceCommand> logger)
{
    public const int Attempts = 3;

    /// <returns>0 when the scan was stored, 1 when it could not be (or SIGTERM came first)</returns>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ScanAndStoreAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogInterrupted(logger);
            return 1;
        }
    }

    private async Task<int> ScanAndStoreAsync(CancellationToken cancellationToken)
    {
        // Connecting and migrating overlap the scan.
        var prepared = store.PrepareAsync(cancellationToken);
        var scan = await Task.Run(() => collector.Collect(cancellationToken), cancellationToken);
        try
        {
            await prepared;
        }
        catch (Exception)
        {
            // Whatever it was, the first store attempt below meets it again and reports it.
        }

        var delay = StoreLoop.InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store.StoreAsync(scan, cancellationToken);
                return 0;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                if (attempt == Attempts)
                {
                    LogGaveUp(logger, settings.DatabaseDescription, attempt, StoreLoop.Describe(e));
                    return 1;
                }
            }

            await Task.Delay(delay, time, cancellationToken);
            delay *= 2;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Interrupted before the scan was stored; nothing was written")]
    private static partial void LogInterrupted(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not store the scan in PostgreSQL at {Database} after {Attempts} attempts: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string database, int attempts, string reason);
}
