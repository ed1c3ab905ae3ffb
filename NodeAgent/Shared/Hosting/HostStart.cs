using Microsoft.Extensions.Hosting;

namespace NodeAgent.Shared.Hosting;

public static class HostStart
{
    /// <summary>
    /// Waits until the host has started (its endpoint bound, every service started); false when it stops first. A
    /// capability's loop calls it before collecting anything, so that an agent that cannot start does no work.
    /// </summary>
    public static async Task<bool> WaitForStartedAsync(this IHostApplicationLifetime lifetime, CancellationToken stoppingToken)
    {
        if (lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return true;
        }

        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var onStarted = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await using var onStopping = stoppingToken.Register(() => started.TrySetCanceled(stoppingToken));
        try
        {
            await started.Task;
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
