using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Shared.Delivery;

namespace NodeAgent.Tests.Shared;

/// <summary>
/// The generic spool: records come out oldest first; to stay within its bounds it drops the oldest waiting record
/// (never the one being stored: when that one alone fills the spool, the new record is dropped), counts a shared part
/// once, and counts what it drops.
/// </summary>
public sealed class SpoolTests : IDisposable
{
    private readonly RecordedDelivery _delivery = new();

    public void Dispose() => _delivery.Dispose();

    private Spool<TestRecord> Spool(int capacity = 100, long maxWeight = 1_000_000) =>
        new(new SpoolLimits(capacity, maxWeight), TestRecordKind.Instance, _delivery.Outcomes);

    private static IEnumerable<TestRecord> Records(params int[] ids) => ids.Select(id => new TestRecord(id));

    /// <summary>Takes every waiting record out, oldest first, as the delivery loop would.</summary>
    private static List<int> TakeAll(Spool<TestRecord> spool)
    {
        var ids = new List<int>();
        while (spool.TryPeek(out var next))
        {
            ids.Add(next!.Id);
            spool.Complete(next);
        }

        return ids;
    }

    [Fact]
    public async Task Records_come_out_oldest_first()
    {
        var spool = Spool();
        foreach (var record in Records(1, 2, 3))
        {
            spool.Add(record);
        }

        var order = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            var next = await spool.PeekAsync(CancellationToken.None);
            order.Add(next.Id);
            spool.Complete(next);
        }

        Assert.Equal([1, 2, 3], order);
        Assert.Equal(0, spool.Count);
    }

    [Fact]
    public async Task Peeking_does_not_remove_a_record_until_it_is_completed()
    {
        var spool = Spool();
        spool.Add(new TestRecord(1));
        spool.Add(new TestRecord(2));

        var first = await spool.PeekAsync(CancellationToken.None);
        var again = await spool.PeekAsync(CancellationToken.None);

        Assert.Same(first, again);
        Assert.Equal(2, spool.Count);
        spool.Complete(first);
        Assert.Equal(2, (await spool.PeekAsync(CancellationToken.None)).Id);
    }

    [Fact]
    public async Task PeekAsync_waits_until_a_record_is_added()
    {
        var spool = Spool();
        var peek = spool.PeekAsync(CancellationToken.None);
        Assert.False(peek.IsCompleted);

        var record = new TestRecord(1);
        spool.Add(record);

        Assert.Same(record, await peek.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task PeekAsync_on_an_empty_spool_ends_when_cancelled()
    {
        var spool = Spool();
        using var cancel = new CancellationTokenSource();
        var peek = spool.PeekAsync(cancel.Token);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => peek.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Past_its_capacity_the_spool_drops_the_oldest_waiting_records_and_counts_them_dropped()
    {
        var spool = Spool(capacity: 3);

        foreach (var record in Records(1, 2, 3, 4, 5))
        {
            spool.Add(record);
        }

        Assert.Equal(3, spool.Count);
        Assert.Equal(2, _delivery.Count("dropped"));
        Assert.Equal([3, 4, 5], TakeAll(spool));
    }

    [Fact]
    public async Task Past_its_capacity_the_spool_never_drops_the_record_being_stored()
    {
        var spool = Spool(capacity: 3);
        spool.Add(new TestRecord(1));
        var inFlight = await spool.PeekAsync(CancellationToken.None);

        foreach (var record in Records(2, 3, 4, 5))
        {
            spool.Add(record);
        }

        Assert.Equal(1, inFlight.Id);
        Assert.Equal(2, _delivery.Count("dropped"));
        Assert.Equal([1, 4, 5], TakeAll(spool));
    }

    [Fact]
    public async Task When_the_record_being_stored_alone_fills_the_spool_a_new_record_is_dropped_and_counted()
    {
        var spool = Spool(capacity: 1);
        spool.Add(new TestRecord(1));
        _ = await spool.PeekAsync(CancellationToken.None);

        spool.Add(new TestRecord(2));

        Assert.Equal(1, _delivery.Count("dropped"));
        Assert.Equal([1], TakeAll(spool));
    }

    [Fact]
    public void A_record_heavier_than_the_weight_bound_is_still_accepted_once_the_older_ones_are_dropped()
    {
        var spool = Spool(maxWeight: 5);

        spool.Add(new TestRecord(1, weight: 10));
        spool.Add(new TestRecord(2, weight: 10));

        Assert.Equal(1, _delivery.Count("dropped"));
        Assert.Equal([2], TakeAll(spool));
    }

    [Fact]
    public void A_part_shared_by_several_waiting_records_is_weighed_once()
    {
        var spool = Spool(maxWeight: 10);
        var payload = new object();

        for (var id = 1; id <= 5; id++)
        {
            spool.Add(new TestRecord(id, payload, weight: 10));
        }

        Assert.Equal(10, spool.Weight);
        Assert.Equal(5, spool.Count);
        Assert.Equal(0, _delivery.Count("dropped"));
    }

    [Fact]
    public void Past_its_weight_bound_the_spool_drops_the_oldest_records_until_the_distinct_parts_fit()
    {
        var spool = Spool(maxWeight: 25);
        var first = new object();
        var second = new object();
        var third = new object();

        spool.Add(new TestRecord(1, first, weight: 10));
        spool.Add(new TestRecord(2, first, weight: 10));
        spool.Add(new TestRecord(3, second, weight: 10));
        Assert.Equal(20, spool.Weight);

        spool.Add(new TestRecord(4, third, weight: 10));

        Assert.Equal(20, spool.Weight);
        Assert.Equal(2, _delivery.Count("dropped"));
        Assert.Equal([3, 4], TakeAll(spool));
    }

    [Fact]
    public void Completing_every_record_releases_all_their_weight()
    {
        var spool = Spool();
        var payload = new object();
        spool.Add(new TestRecord(1, payload, weight: 7));
        spool.Add(new TestRecord(2, payload, weight: 7));
        spool.Add(new TestRecord(3, weight: 3));
        Assert.Equal(10, spool.Weight);

        TakeAll(spool);

        Assert.Equal(0, spool.Weight);
        Assert.Equal(0, spool.Count);
    }
}

/// <summary>A record for the delivery tests: an id, and optionally a part it shares with other records and its weight.</summary>
internal sealed class TestRecord(int id, object? shared = null, long weight = 1)
{
    public int Id => id;

    public object? Shared => shared;

    public long Weight => weight;

    public override string ToString() => $"record {id}";
}

internal sealed class TestRecordKind : RecordKind<TestRecord>
{
    public static readonly TestRecordKind Instance = new();

    public override string Noun => "record";

    public override string Plural => "records";

    public override string Describe(TestRecord record) => record.ToString();

    public override object SharedPart(TestRecord record) => record.Shared ?? record;

    public override long Weight(TestRecord record) => record.Weight;
}

/// <summary>
/// <see cref="DeliveryOutcomes{T}"/> on a real meter of its own, with a listener that adds up what it counts:
/// records by <c>result</c>, and retries.
/// </summary>
internal sealed class RecordedDelivery : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _results = [];
    private long _retries;

    public RecordedDelivery()
    {
        var meter = _services.GetRequiredService<IMeterFactory>().Create("NodeAgent.Tests.Delivery");
        var outcomes = meter.CreateCounter<long>("test.records");
        var retries = meter.CreateCounter<long>("test.retries");
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (_lock)
            {
                if (ReferenceEquals(instrument, retries))
                {
                    _retries += value;
                    return;
                }

                foreach (var tag in tags)
                {
                    if (tag.Key == "result" && tag.Value is string result)
                    {
                        _results[result] = _results.GetValueOrDefault(result) + value;
                    }
                }
            }
        });
        _listener.Start();
        Outcomes = new DeliveryOutcomes<TestRecord>(
            TestRecordKind.Instance, new DeliveryCounters(outcomes, retries, DeliveryCounters.CreateStoreDuration(meter, "test.store.duration", "record")), NullLogger<DeliveryOutcomes<TestRecord>>.Instance);
    }

    public DeliveryOutcomes<TestRecord> Outcomes { get; }

    public long Retries
    {
        get
        {
            lock (_lock)
            {
                return _retries;
            }
        }
    }

    /// <summary>Records counted with tag <c>result</c> = <paramref name="result"/> (stored, dropped, failed).</summary>
    public long Count(string result)
    {
        lock (_lock)
        {
            return _results.GetValueOrDefault(result);
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        _services.Dispose();
    }
}
