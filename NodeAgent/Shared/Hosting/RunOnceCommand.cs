using System.Runtime;
using Microsoft.Extensions.Logging;

namespace NodeAgent.Shared.Hosting;

/// <summary><c>Agent:RunOnce=true</c>: every capability's one-shot job, then success or failure as the exit code.</summary>
internal sealed partial class RunOnceCommand(IEnumerable<IRunOnceJob> jobs, ILogger<RunOnceCommand> logger)
{
    /// <returns><see cref="ExitCodes.Success"/> when every job stored what it collected, else <see cref="ExitCodes.Failed"/> (so does SIGTERM first)</returns>
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        // One pass over the tree allocates a few MiB, most of which it keeps to the end: collecting on the way (several
        // pauses of every thread) would find little to free. Past this much the GC runs as usual.
        var heldOff = GC.TryStartNoGCRegion(NoCollectionBytes);
        try
        {
            var results = await Task.WhenAll(jobs.Select(job => job.RunAsync(cancellationToken)));
            return results.All(stored => stored) ? ExitCodes.Success : ExitCodes.Failed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogInterrupted(logger);
            return ExitCodes.Failed;
        }
        finally
        {
            if (heldOff && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
            {
                GC.EndNoGCRegion();
            }
        }
    }

    /// <summary>What the jobs may allocate before the GC collects (a scan of 200,000 entries allocates about 9 MiB in all).</summary>
    public const long NoCollectionBytes = 16L << 20;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Interrupted before everything was stored; nothing of it was written")]
    private static partial void LogInterrupted(ILogger logger);
}
