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
}
