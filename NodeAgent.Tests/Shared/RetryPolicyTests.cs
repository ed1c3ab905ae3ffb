using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Shared.Delivery;
using Npgsql;

namespace NodeAgent.Tests.Shared;

/// <summary>
/// The one retry policy for writing to PostgreSQL: its backoff, its jitter, its attempts on a fake clock, and which
/// errors it tells apart as permanent.
/// </summary>
public sealed class RetryPolicyTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    internal static PostgresException Postgres(string sqlState, string message = "rejected") =>
        new(message, "ERROR", "ERROR", sqlState);

    /// <summary>
    /// Advances the fake clock a minute at a time (longer than any wait) until <paramref name="task"/> ends: each
    /// wait between attempts ends only when the clock passes it.
    /// </summary>
    private static async Task<T> Drive<T>(FakeTimeProvider time, Task<T> task)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!task.IsCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the attempts did not end");
            time.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(1);
        }

        return await task;
    }

    // Backoff and jitter

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    [InlineData(5, 16)]
    [InlineData(6, 32)]
    [InlineData(7, 60)]
    [InlineData(8, 60)]
    [InlineData(100, 60)]
    [InlineData(int.MaxValue, 60)]
    public void Backoff_doubles_from_one_second_and_stops_at_one_minute(int failures, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), RetryPolicy.Backoff(failures));
    }

    [Fact]
    public void Backoff_before_any_failure_is_a_mistake()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RetryPolicy.Backoff(0));
    }

    [Theory]
    [InlineData(0.0, 8.0)]
    [InlineData(0.5, 10.0)]
    [InlineData(0.75, 11.0)]
    public void Jitter_scales_the_backoff_by_a_factor_from_four_fifths_to_six_fifths(double random, double seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), RetryPolicy.WithJitter(TimeSpan.FromSeconds(10), random));
    }

    [Fact]
    public void Jitter_never_reaches_more_than_a_fifth_above_the_backoff()
    {
        var delay = RetryPolicy.WithJitter(TimeSpan.FromSeconds(10), Math.BitDecrement(1.0));

        Assert.InRange(delay, TimeSpan.FromSeconds(11.99), TimeSpan.FromSeconds(12));
    }

    [Fact]
    public void Every_next_delay_stays_within_a_fifth_of_the_backoff()
    {
        var policy = new RetryPolicy(new FakeTimeProvider());
        for (var failures = 1; failures <= 8; failures++)
        {
            var backoff = RetryPolicy.Backoff(failures);
            for (var i = 0; i < 200; i++)
            {
                Assert.InRange(policy.NextDelay(failures), backoff * 0.8, backoff * 1.2);
            }
        }
    }

    // TryAsync

    [Fact]
    public async Task TryAsync_succeeds_after_transient_failures_waiting_on_the_clock_between_attempts()
    {
        var time = new FakeTimeProvider();
        var attempts = new List<DateTimeOffset>();
        var policy = new RetryPolicy(time);

        var task = policy.TryAsync(_ =>
        {
            attempts.Add(time.GetUtcNow());
            return attempts.Count <= 2 ? Task.FromException(new NpgsqlException("down")) : Task.CompletedTask;
        }, attempts: 5, CancellationToken.None);

        Assert.False(task.IsCompleted, "the second attempt came before the clock moved");
        var (error, made) = await Drive(time, task);

        Assert.Null(error);
        Assert.Equal(3, made);
        Assert.Equal(3, attempts.Count);
        Assert.True(attempts[1] - attempts[0] >= RetryPolicy.Backoff(1) * 0.8);
        Assert.True(attempts[2] - attempts[1] >= RetryPolicy.Backoff(2) * 0.8);
    }

    [Fact]
    public async Task TryAsync_stops_at_the_first_permanent_error_without_waiting()
    {
        var time = new FakeTimeProvider();
        var calls = 0;
        var rejected = Postgres("22P02", "invalid input syntax for type uuid");

        var task = new RetryPolicy(time).TryAsync(_ =>
        {
            calls++;
            return Task.FromException(rejected);
        }, attempts: 5, CancellationToken.None);

        Assert.True(task.IsCompleted, "it waited before giving up on a permanent error");
        var (error, made) = await task;
        Assert.Same(rejected, error);
        Assert.Equal(1, made);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task TryAsync_stops_at_a_permanent_error_that_follows_transient_ones()
    {
        var time = new FakeTimeProvider();
        var calls = 0;
        var rejected = Postgres("23505", "duplicate key value violates unique constraint");

        var (error, made) = await Drive(time, new RetryPolicy(time).TryAsync(_ =>
        {
            calls++;
            return Task.FromException(calls == 1 ? new NpgsqlException("down") : rejected);
        }, attempts: 5, CancellationToken.None));

        Assert.Same(rejected, error);
        Assert.Equal(2, made);
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task TryAsync_gives_up_after_the_attempts_it_was_given_returning_the_last_error()
    {
        var time = new FakeTimeProvider();
        var errors = new List<Exception>();

        var (error, made) = await Drive(time, new RetryPolicy(time).TryAsync(_ =>
        {
            var e = new NpgsqlException($"down {errors.Count + 1}");
            errors.Add(e);
            return Task.FromException(e);
        }, attempts: 3, CancellationToken.None));

        Assert.Equal(3, made);
        Assert.Equal(3, errors.Count);
        Assert.Same(errors[^1], error);
    }

    [Fact]
    public async Task TryAsync_ends_with_cancellation_when_cancelled_while_waiting()
    {
        var time = new FakeTimeProvider();
        using var cancel = new CancellationTokenSource();
        var calls = 0;

        var task = new RetryPolicy(time).TryAsync(_ =>
        {
            calls++;
            return Task.FromException(new NpgsqlException("down"));
        }, attempts: 5, cancel.Token);
        Assert.False(task.IsCompleted);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(Patience));
        Assert.Equal(1, calls);
    }

    // Permanent or transient

    [Theory]
    [InlineData("22P02")] // invalid text representation
    [InlineData("22001")] // string data right truncation
    [InlineData("22003")] // numeric value out of range
    [InlineData("23505")] // unique violation
    [InlineData("23502")] // not-null violation
    [InlineData("23514")] // check violation
    [InlineData("54000")] // program limit exceeded
    [InlineData("54001")] // statement too complex
    public void PostgreSQL_rejecting_the_data_itself_is_permanent(string sqlState)
    {
        Assert.True(RetryPolicy.IsPermanent(Postgres(sqlState)));
    }

    [Theory]
    [InlineData("23503")] // foreign key violation: the row referred to was deleted a moment ago
    [InlineData("08006")] // connection failure
    [InlineData("08001")] // unable to connect
    [InlineData("57P01")] // admin shutdown
    [InlineData("28P01")] // invalid password
    [InlineData("42P01")] // undefined table
    [InlineData("53300")] // too many connections
    [InlineData("40001")] // serialization failure
    public void Connection_authentication_resource_missing_table_and_foreign_key_errors_are_transient(string sqlState)
    {
        Assert.False(RetryPolicy.IsPermanent(Postgres(sqlState)));
    }

    public static TheoryData<Exception, bool> Exceptions => new()
    {
        { new NpgsqlException("Failed to connect"), false },
        { new IOException("Connection reset"), false },
        { new TimeoutException("Timeout during reading"), false },
        { new SocketException((int)SocketError.ConnectionRefused), false },
        { new ArgumentException("bad argument"), true },
        { new InvalidCastException("cannot write DateTime"), true },
        { new OverflowException("too big"), true },
        { new FormatException("bad format"), true },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void Network_errors_are_transient_and_faults_in_the_agent_are_permanent(Exception e, bool permanent)
    {
        Assert.Equal(permanent, RetryPolicy.IsPermanent(e));
    }

    // Describe

    [Fact]
    public void A_PostgreSQL_error_is_described_by_its_code_and_message()
    {
        Assert.Equal("22P02: invalid input syntax for type uuid",
            RetryPolicy.Describe(Postgres("22P02", "invalid input syntax for type uuid")));
    }

    [Fact]
    public void An_Npgsql_error_is_described_with_its_cause()
    {
        var e = new NpgsqlException("Failed to connect to 10.0.0.5:5432", new SocketException((int)SocketError.ConnectionRefused));

        Assert.Equal($"Failed to connect to 10.0.0.5:5432 ({new SocketException((int)SocketError.ConnectionRefused).Message})", RetryPolicy.Describe(e));
    }

    [Fact]
    public void Any_other_error_is_described_by_its_message_alone_on_one_line()
    {
        Exception e;
        try
        {
            throw new InvalidCastException("Writing values of 'System.DateTime' is not supported");
        }
        catch (InvalidCastException thrown)
        {
            e = thrown;
        }

        Assert.Equal("Writing values of 'System.DateTime' is not supported", RetryPolicy.Describe(e));
    }

    [Fact]
    public void A_cancelled_attempt_is_described_as_timed_out()
    {
        Assert.Equal("timed out", RetryPolicy.Describe(new OperationCanceledException()));
    }

    [Fact]
    public async Task The_description_of_a_real_connection_failure_never_includes_the_connection_string()
    {
        // A port nothing listens on: the connection is refused at once.
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var connectionString = $"Host=127.0.0.1;Port={port};Database=monitor;Username=agent;Password=s3cret-pw;Timeout=5;Pooling=false";
        await using var connection = new NpgsqlConnection(connectionString);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => connection.OpenAsync());

        var description = RetryPolicy.Describe(e);

        Assert.False(RetryPolicy.IsPermanent(e));
        Assert.Contains(port.ToString(CultureInfo.InvariantCulture), description, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', description);
        Assert.DoesNotContain("s3cret-pw", description, StringComparison.Ordinal);
        Assert.DoesNotContain("Password", description, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Username=", description, StringComparison.OrdinalIgnoreCase);
    }
}
