using Microsoft.Extensions.Logging;
using NodeAgent.Configuration;
using NodeAgent.Storage;

namespace NodeAgent.Hosting;

/// <summary><c>Agent:RunOnce=true</c>: scan once, store, and report success through the exit code.</summary>
public sealed partial class RunOnceCommand(AgentSettings settings, InventoryCollector collector, InventoryStore store, TimeProvider time, ILogger<RunOnceCommand> logger)
{
    public const int Attempts = 3;

    /// <returns>0 when the scan was stored, 1 when it could not be</returns>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var scan = collector.Collect(cancellationToken);
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

                await Task.Delay(delay, time, cancellationToken);
                delay *= 2;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not store the scan in PostgreSQL at {Database} after {Attempts} attempts: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string database, int attempts, string reason);
}
