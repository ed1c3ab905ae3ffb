using Npgsql;

namespace NodeAgent.Shared.Delivery;

/// <summary>
/// The agent's one retry policy for writing to PostgreSQL: exponential backoff from 1 s doubling to 1 min with ±20 %
/// jitter (so that the agents of a cluster do not retry in step after an outage), and the rule that tells a
/// permanent error (retrying cannot help) from a transient one. The store loop and the run-once path both use it.
/// </summary>
public sealed class RetryPolicy(TimeProvider time)
{
    public static readonly TimeSpan InitialBackoff = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(1);
    private const double Jitter = 0.2;

    /// <summary>The delay after the <paramref name="failures"/>-th failure in a row (1, 2, ...), before jitter.</summary>
    public static TimeSpan Backoff(int failures)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(failures, 1);
        var doublings = Math.Min(failures - 1, 16);
        return TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, InitialBackoff.Ticks << doublings));
    }

    /// <summary><see cref="Backoff"/> scaled by a factor from 0.8 to 1.2 (<paramref name="random"/> in [0, 1)).</summary>
    public static TimeSpan WithJitter(TimeSpan backoff, double random) => backoff * (1 - Jitter + 2 * Jitter * random);

    /// <summary>The delay to wait after the <paramref name="failures"/>-th failure in a row, jitter included.</summary>
    public TimeSpan NextDelay(int failures) => WithJitter(Backoff(failures), Random.Shared.NextDouble());

    public Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken) => Task.Delay(delay, time, cancellationToken);

    /// <summary>
    /// Tries <paramref name="store"/> up to <paramref name="attempts"/> times, waiting between attempts, and stops at
    /// once on a permanent error. Returns the last error (null when it succeeded) and the attempts made. Cancellation propagates.
    /// </summary>
    public async Task<(Exception? Error, int Attempts)> TryAsync(Func<CancellationToken, Task> store, int attempts, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await store(cancellationToken);
                return (null, attempt);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                if (attempt == attempts || IsPermanent(e))
                {
                    return (e, attempt);
                }
            }

            await DelayAsync(NextDelay(attempt), cancellationToken);
        }
    }

    /// <summary>
    /// Errors that storing the same record again would meet again: PostgreSQL rejecting the data itself (data
    /// exceptions, integrity violations, program limits) or a fault in the agent. Connection, authentication, resource
    /// and missing-table errors are transient: the operator can fix them; so is a foreign-key violation, which means a
    /// row the record refers to (a list) was deleted a moment ago (a retry stores it again).
    /// </summary>
    public static bool IsPermanent(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState.StartsWith("22", StringComparison.Ordinal)
            || (pg.SqlState.StartsWith("23", StringComparison.Ordinal) && pg.SqlState != PostgresErrorCodes.ForeignKeyViolation)
            || pg.SqlState.StartsWith("54", StringComparison.Ordinal),
        NpgsqlException or TimeoutException or System.Net.Sockets.SocketException or IOException => false,
        ArgumentException or InvalidCastException or OverflowException or FormatException => true,
        _ => false,
    };

    /// <summary>One line, without the connection string (Npgsql's messages never carry the password).</summary>
    public static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "timed out",
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        _ when e.InnerException is { } inner && e is NpgsqlException => $"{e.Message} ({inner.Message})",
        _ => e.Message,
    };
}
