using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Inventory;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Inventory;

/// <summary>The shared spool holding scans: their order, their list sharing, and the inventory's bounds.</summary>
public sealed class ScanSpoolTests : IDisposable
{
    private readonly TempTree _tree = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public void Dispose()
    {
        _tree.Dispose();
        _services.Dispose();
    }

    private Spool<ScanRecord> Spool(int capacity, long maxEntries = 1_000_000)
    {
        var kind = new ScanRecordKind();
        var metrics = new InventoryMetrics(new AgentDiagnostics(_services.GetRequiredService<IMeterFactory>()));
        return new Spool<ScanRecord>(new SpoolLimits(capacity, maxEntries), kind,
            new DeliveryOutcomes<ScanRecord>(kind, metrics.Delivery, NullLogger<DeliveryOutcomes<ScanRecord>>.Instance));
    }

    [Fact]
    public async Task Scans_come_out_oldest_first()
    {
        _tree.File("a");
        var spool = Spool(10);
        var scans = Enumerable.Range(0, 3).Select(_ => StoreHarness.Scan(_tree.Root)).ToList();
        scans.ForEach(spool.Add);

        var order = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            var next = await spool.PeekAsync(default);
            order.Add(next.ScanId);
            spool.Complete(next);
        }

        Assert.Equal(scans.Select(s => s.ScanId), order);
        Assert.Equal(0, spool.Count);
    }

    [Fact]
    public void Unchanged_scans_waiting_in_the_spool_share_one_list_in_memory()
    {
        _tree.Populate(1000);
        var spool = Spool(100);

        for (var i = 0; i < 10; i++)
        {
            spool.Add(StoreHarness.Scan(_tree.Root));
        }

        Assert.Equal(10, spool.Count);
        Assert.Equal(1001, spool.Weight);
    }

    [Fact]
    public async Task Past_its_capacity_the_spool_drops_the_oldest_waiting_scan_but_never_the_one_being_stored()
    {
        _tree.File("a");
        var spool = Spool(3);
        var scans = Enumerable.Range(0, 5).Select(_ => StoreHarness.Scan(_tree.Root)).ToList();
        spool.Add(scans[0]);
        var inFlight = await spool.PeekAsync(default);

        scans.Skip(1).ToList().ForEach(spool.Add);

        var left = new List<Guid>();
        while (spool.TryPeek(out var next))
        {
            left.Add(next!.ScanId);
            spool.Complete(next);
        }

        Assert.Same(scans[0], inFlight);
        Assert.Equal([scans[0].ScanId, scans[3].ScanId, scans[4].ScanId], left);
    }

    [Fact]
    public void Past_its_entry_bound_the_spool_drops_the_oldest_distinct_lists()
    {
        var spool = Spool(100, maxEntries: 25);
        var scans = new List<ScanRecord>();
        for (var i = 0; i < 4; i++)
        {
            _tree.File($"f{i}-{Guid.NewGuid()}");
            _tree.Populate(0);
            for (var j = 0; j < 9; j++)
            {
                _tree.File($"batch{i}/x{j}");
            }

            var scan = StoreHarness.Scan(_tree.Root);
            scans.Add(scan);
            spool.Add(scan);
        }

        Assert.True(spool.Weight <= 25 || spool.Count == 1, $"{spool.Weight} entries retained");
        Assert.True(spool.TryPeek(out var oldest));
        Assert.NotEqual(scans[0].ScanId, oldest!.ScanId);
        Assert.True(spool.Count < 4);
    }

    [Fact]
    public async Task The_scan_about_to_be_taken_counts_against_the_capacity()
    {
        _tree.File("a");
        var spool = Spool(2);
        var first = StoreHarness.Scan(_tree.Root);
        var second = StoreHarness.Scan(_tree.Root);
        spool.Add(first);
        spool.Add(second);
        spool.Retry(await spool.PeekAsync(default));   // the database is down: the oldest waits to be retried

        Assert.True(spool.TryReserve(expectedWeight: 1));

        Assert.Equal(1, spool.Count);
        Assert.True(spool.TryPeek(out var oldest));
        Assert.Equal(second.ScanId, oldest!.ScanId);
    }

    [Fact]
    public async Task The_scan_about_to_be_taken_counts_against_the_entry_bound_at_the_size_of_the_previous_one()
    {
        _tree.Populate(9);
        var spool = Spool(100, maxEntries: 15);
        var waiting = StoreHarness.Scan(_tree.Root);
        spool.Add(waiting);
        spool.Retry(await spool.PeekAsync(default));
        var held = spool.Weight;

        Assert.True(spool.TryReserve(expectedWeight: held));

        // Ten entries waiting and ten expected would pass fifteen: the waiting scan makes room.
        Assert.Equal(0, spool.Count);
        Assert.Equal(0, spool.Weight);
    }

    [Fact]
    public void A_scan_the_store_loop_has_not_tried_yet_is_kept_and_the_next_one_is_not_taken()
    {
        // The race of a scan added just before the next tick: while the database answers, storing what was taken
        // comes first; the scan must not be dropped to make room for one not taken yet.
        _tree.Populate(9);
        var spool = Spool(100, maxEntries: 15);
        var taken = StoreHarness.Scan(_tree.Root);
        spool.Add(taken);

        Assert.False(spool.TryReserve(expectedWeight: taken.Result.Snapshot.Count));
        Assert.Equal(1, spool.Count);
        Assert.True(spool.TryPeek(out var next));
        Assert.Equal(taken.ScanId, next!.ScanId);
    }

    [Fact]
    public async Task No_scan_is_taken_while_the_scan_being_stored_fills_the_bounds()
    {
        _tree.Populate(9);
        var spool = Spool(100, maxEntries: 15);
        var storing = StoreHarness.Scan(_tree.Root);
        spool.Add(storing);
        Assert.Same(storing, await spool.PeekAsync(default));

        Assert.False(spool.TryReserve(expectedWeight: storing.Result.Snapshot.Count));
        Assert.Equal(1, spool.Count);
    }

    [Fact]
    public async Task A_scan_waiting_to_be_retried_is_dropped_to_make_room_for_the_next()
    {
        _tree.Populate(9);
        var spool = Spool(100, maxEntries: 15);
        var failed = StoreHarness.Scan(_tree.Root);
        spool.Add(failed);
        spool.Retry(await spool.PeekAsync(default));

        Assert.True(spool.TryReserve(expectedWeight: failed.Result.Snapshot.Count));
        Assert.Equal(0, spool.Count);
    }

    [Fact]
    public async Task In_an_outage_the_newest_scans_are_kept_and_the_older_ones_dropped_and_counted()
    {
        var dropped = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == InventoryMetrics.ScansName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "result", Value: "dropped" })
                {
                    Interlocked.Add(ref dropped, value);
                }
            }
        });
        listener.Start();
        _tree.Populate(3);
        var spool = Spool(3);
        var taken = new List<ScanRecord>();

        // A scan a second for ten seconds; the store loop's attempts all fail, backing off 1, 2, 4, 8 s.
        for (var second = 0; second < 10; second++)
        {
            _tree.File($"s{second}");
            if (spool.TryReserve(expectedWeight: 4))
            {
                var scan = StoreHarness.Scan(_tree.Root);
                taken.Add(scan);
                spool.Add(scan);
            }

            if (second is 0 or 1 or 3 or 7)
            {
                spool.Retry(await spool.PeekAsync(default));
            }
        }

        var stored = new List<ScanRecord>();
        while (spool.TryPeek(out var next))
        {
            stored.Add(next!);
            spool.Complete(next!);
        }

        Assert.Equal(10, taken.Count);
        Assert.Equal(taken.TakeLast(3).Select(s => s.ScanId), stored.Select(s => s.ScanId));
        Assert.Equal(7, Interlocked.Read(ref dropped));
    }

    [Fact]
    public async Task What_the_spool_holds_never_exceeds_its_bounds_whatever_arrives()
    {
        const int MaxEntries = 40;
        var spool = Spool(4, maxEntries: MaxEntries);
        var random = new Random(7);
        long expected = 0;
        for (var round = 0; round < 60; round++)
        {
            _tree.File($"r{round}/f");
            _tree.Populate(random.Next(1, 15));
            if (spool.TryReserve(expected))
            {
                Assert.True(spool.Count + 1 <= 4);
                Assert.True(spool.Weight + expected <= MaxEntries || spool.Count == 0, $"{spool.Weight} + {expected} held");
                var scan = StoreHarness.Scan(_tree.Root);
                expected = scan.Result.Snapshot.Count;
                spool.Add(scan);
            }

            Assert.True(spool.Count <= 4);
            Assert.True(spool.Weight <= MaxEntries || spool.Count == 1, $"{spool.Weight} entries held in {spool.Count} scans");
            if (random.Next(3) == 0 && spool.TryPeek(out var next))
            {
                if (random.Next(2) == 0)
                {
                    spool.Complete(next!);
                }
                else
                {
                    spool.Retry(next!);
                }
            }

            await Task.Yield();
        }
    }
}

