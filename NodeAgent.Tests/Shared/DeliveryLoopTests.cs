using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using Npgsql;

namespace NodeAgent.Tests.Shared;

/// <summary>
/// The delivery loop over an in-memory store: it stores records oldest first, retries the same record on a transient
/// error after a backoff on the clock, gives a record up on a permanent error, and drains what is left on stop.
/// </summary>
public sealed class DeliveryLoopTests : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _time = new();
    private readonly RecordedDelivery _delivery = new();
    private readonly RecordingStore _store;
    private readonly Spool<TestRecord> _spool;
    private readonly DeliveryLoop<TestRecord> _loop;

    public DeliveryLoopTests()
    {
        _store = new RecordingStore(_time);
        _spool = new Spool<TestRecord>(new SpoolLimits(100, 1_000_000), TestRecordKind.Instance, _delivery.Outcomes);
        _loop = new DeliveryLoop<TestRecord>(
            new AgentSettings("node", "/", false, "Host=h;Database=d;Username=u"),
            _spool,
            _store,
            TestRecordKind.Instance,
            new RetryPolicy(_time),
            _delivery.Outcomes,
            _time,
            NullLogger<DeliveryLoop<TestRecord>>.Instance);
    }

    public async ValueTask DisposeAsync()
    {
        await _loop.StopAsync(CancellationToken.None);
        _loop.Dispose();
        _delivery.Dispose();
    }

    private void Add(params int[] ids)
    {
        foreach (var id in ids)
        {
            _spool.Add(new TestRecord(id));
        }
    }

    /// <summary>Polls <paramref name="condition"/>; with <paramref name="advance"/>, moves the clock on a second at a time meanwhile.</summary>
    private async Task Until(Func<bool> condition, string what, bool advance = false)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            if (advance)
            {
                _time.Advance(TimeSpan.FromSeconds(1));
            }

            await Task.Delay(1);
        }
    }

    [Fact]
    public async Task It_stores_records_in_spool_order_including_those_added_while_it_waits()
    {
        Add(1, 2, 3);
        await _loop.StartAsync(CancellationToken.None);
        await Until(() => _delivery.Count("stored") == 3, "the first three are stored");

        Add(4, 5);
        await Until(() => _delivery.Count("stored") == 5, "all five are stored");

        Assert.Equal([1, 2, 3, 4, 5], _store.Stored);
        Assert.Equal(5, _delivery.Count("stored"));
        Assert.Equal(0, _spool.Count);
    }

    [Fact]
    public async Task On_transient_failures_it_retries_the_same_record_after_a_backoff_and_skips_nothing()
    {
        _store.FailNext(3, () => new NpgsqlException("down"));
        Add(1, 2, 3);

        await _loop.StartAsync(CancellationToken.None);
        await Until(() => _delivery.Count("stored") == 3, "all three are stored", advance: true);

        Assert.Equal([1, 1, 1, 1, 2, 3], _store.Attempts.Select(a => a.Id));
        Assert.Equal([1, 2, 3], _store.Stored);
        Assert.Equal(3, _delivery.Retries);
        Assert.Equal(3, _delivery.Count("stored"));
        Assert.Equal(0, _delivery.Count("failed"));
        for (var failures = 1; failures <= 3; failures++)
        {
            var waited = _store.Attempts[failures].At - _store.Attempts[failures - 1].At;
            Assert.True(waited >= RetryPolicy.Backoff(failures) * 0.8, $"retry {failures} came after {waited}");
        }
    }

    [Fact]
    public async Task A_record_the_database_rejects_for_good_is_given_up_and_the_next_ones_are_stored()
    {
        _store.FailNext(1, () => RetryPolicyTests.Postgres("22P02", "invalid input syntax for type uuid"));
        Add(1, 2, 3);

        // The clock never moves: giving up must not wait.
        await _loop.StartAsync(CancellationToken.None);
        await Until(() => _delivery.Count("stored") == 2, "the other two are stored");

        Assert.Equal([1, 2, 3], _store.Attempts.Select(a => a.Id));
        Assert.Equal([2, 3], _store.Stored);
        Assert.Equal(1, _delivery.Count("failed"));
        Assert.Equal(2, _delivery.Count("stored"));
        Assert.Equal(0, _delivery.Retries);
        Assert.Equal(0, _spool.Count);
    }

    [Fact]
    public async Task On_stop_it_stores_what_is_left_in_the_spool()
    {
        _store.FailNext(1, () => new NpgsqlException("down"));
        Add(1, 2, 3);
        await _loop.StartAsync(CancellationToken.None);
        await Until(() => _delivery.Retries == 1, "the first attempt has failed");

        // The loop is waiting out its backoff on a clock that never moves; the database is back.
        await _loop.StopAsync(CancellationToken.None).WaitAsync(Patience);

        Assert.Equal([1, 2, 3], _store.Stored);
        Assert.Equal(3, _delivery.Count("stored"));
        Assert.Equal(0, _spool.Count);
    }

    [Fact]
    public async Task On_stop_it_stops_draining_at_the_first_failure_and_leaves_the_rest_in_the_spool()
    {
        _store.FailNext(int.MaxValue, () => new NpgsqlException("down"));
        Add(1, 2, 3);
        await _loop.StartAsync(CancellationToken.None);
        await Until(() => _delivery.Retries == 1, "the first attempt has failed");

        await _loop.StopAsync(CancellationToken.None).WaitAsync(Patience);

        Assert.Equal([1, 1], _store.Attempts.Select(a => a.Id));
        Assert.Empty(_store.Stored);
        Assert.Equal(3, _spool.Count);
    }

    /// <summary>An in-memory store that records every attempt and can be told to fail the next calls.</summary>
    private sealed class RecordingStore(TimeProvider time) : IRecordStore<TestRecord>
    {
        private readonly Lock _lock = new();
        private readonly List<(int Id, DateTimeOffset At)> _attempts = [];
        private readonly List<int> _stored = [];
        private int _failures;
        private Func<Exception> _failure = () => new InvalidOperationException("no failure set");

        public IReadOnlyList<(int Id, DateTimeOffset At)> Attempts
        {
            get
            {
                lock (_lock)
                {
                    return [.. _attempts];
                }
            }
        }

        public IReadOnlyList<int> Stored
        {
            get
            {
                lock (_lock)
                {
                    return [.. _stored];
                }
            }
        }

        public void FailNext(int calls, Func<Exception> failure)
        {
            lock (_lock)
            {
                _failures = calls;
                _failure = failure;
            }
        }

        public Task PrepareAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoreAsync(TestRecord record, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                _attempts.Add((record.Id, time.GetUtcNow()));
                if (_failures > 0)
                {
                    _failures--;
                    return Task.FromException(_failure());
                }

                _stored.Add(record.Id);
                return Task.CompletedTask;
            }
        }
    }
}
