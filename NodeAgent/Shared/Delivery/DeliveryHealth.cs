using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Delivery;

/// <summary>
/// Whether a capability is doing its job, from what became of its latest records (fed by
/// <see cref="DeliveryOutcomes{T}"/>), as one entry of <c>/health</c>:
/// <list type="bullet">
/// <item><b>Unhealthy</b> (the agent cannot do its job at all; <c>/health</c> answers 503 and the pod is not Ready): the
/// monitored directory cannot be read, or PostgreSQL refused the last <see cref="FailuresInARow"/> stores for a reason
/// no wait will fix (authentication, privileges, a missing database or table).</item>
/// <item><b>Degraded</b> (200, still Ready, so a database outage never makes every pod NotReady and stalls a rollout):
/// the last <see cref="FailuresInARow"/> collections or stores failed otherwise (an outage), or nothing was stored for
/// <see cref="StaleAfterIntervals"/> intervals.</item>
/// </list>
/// The reason is in the entry's description.
/// </summary>
public sealed class DeliveryHealth(TimeProvider time)
{
    public const int FailuresInARow = 3;
    public const int StaleAfterIntervals = 3;

    private readonly Lock _lock = new();
    private readonly DateTimeOffset _started = time.GetUtcNow();
    private DateTimeOffset? _lastStored;
    private int _collectFailures;
    private string? _collectReason;
    private bool _mountUnreadable;
    private int _storeFailures;
    private string? _storeReason;
    private bool _refused;

    public void Collected()
    {
        lock (_lock)
        {
            _collectFailures = 0;
            _mountUnreadable = false;
        }
    }

    public void CollectFailed(Exception error)
    {
        lock (_lock)
        {
            _collectFailures++;
            _collectReason = error.Message;
            _mountUnreadable = error is MountPathException;
        }
    }

    public void Stored()
    {
        lock (_lock)
        {
            _lastStored = time.GetUtcNow();
            _storeFailures = 0;
            _refused = false;
        }
    }

    public void StoreFailed(Exception error)
    {
        lock (_lock)
        {
            _storeFailures++;
            _storeReason = RetryPolicy.Describe(error);
            _refused = IsRefusal(error);
        }
    }

    /// <param name="noun">what is stored ("scan")</param>
    /// <param name="interval">how often a record is expected to be stored; null when records come only with what they record (file events)</param>
    public HealthCheckResult Evaluate(string noun, TimeSpan? interval)
    {
        lock (_lock)
        {
            if (_mountUnreadable)
            {
                return HealthCheckResult.Unhealthy($"cannot {noun}: {_collectReason}");
            }

            if (_refused && _storeFailures >= FailuresInARow)
            {
                return HealthCheckResult.Unhealthy($"PostgreSQL refused the last {_storeFailures} attempts to store a {noun}: {_storeReason}");
            }

            if (_collectFailures >= FailuresInARow)
            {
                return HealthCheckResult.Degraded($"the last {_collectFailures} attempts to {noun} failed: {_collectReason}");
            }

            if (_storeFailures >= FailuresInARow)
            {
                return HealthCheckResult.Degraded($"the last {_storeFailures} attempts to store a {noun} failed: {_storeReason}");
            }

            var since = _lastStored ?? _started;
            var age = time.GetUtcNow() - since;
            if (interval is { } every && age > every * StaleAfterIntervals)
            {
                return HealthCheckResult.Degraded(_lastStored is null
                    ? $"no {noun} stored since the agent started {age.TotalSeconds:0} s ago"
                    : $"the last {noun} was stored {age.TotalSeconds:0} s ago ({StaleAfterIntervals} intervals of {every.TotalSeconds:0} s)");
            }

            return HealthCheckResult.Healthy(_lastStored is null ? "starting" : $"last {noun} stored {age.TotalSeconds:0} s ago");
        }
    }

    /// <summary>PostgreSQL refusing the agent itself, which waiting does not fix: wrong credentials, missing privileges, database or table.</summary>
    internal static bool IsRefusal(Exception error) => error is PostgresException pg
        && (pg.SqlState.StartsWith("28", StringComparison.Ordinal)
            || pg.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.UndefinedTable);
}

/// <summary>A capability's entry in /health (named after it), evaluated from its <see cref="DeliveryHealth"/>.</summary>
internal sealed class DeliveryHealthCheck(DeliveryHealth health, string noun, TimeSpan? interval) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(health.Evaluate(noun, interval));
}
