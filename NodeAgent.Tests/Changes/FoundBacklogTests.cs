using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Changes;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>What a scan found that the state does not know (a first start's whole tree), as the detector takes it into batches.</summary>
public sealed class FoundBacklogTests : IDisposable
{
    private readonly TempTree _tree = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly AgentDiagnostics _diagnostics;
    private readonly ChangeDetector _detector;

    public FoundBacklogTests()
    {
        _diagnostics = new AgentDiagnostics(_services.GetRequiredService<IMeterFactory>());
        _detector = new ChangeDetector(ChangesSettings.Load(new ConfigurationBuilder().Build()), "node", _tree.Root, new ChangesMetrics(_diagnostics),
            new FakeTimeProvider(), NullLogger.Instance);
    }

    public void Dispose()
    {
        _detector.Dispose();
        _diagnostics.Dispose();
        _services.Dispose();
        _tree.Dispose();
    }

    [Fact]
    public void What_a_scan_found_goes_into_a_batch_only_up_to_its_byte_bound_snapshot_contents_included()
    {
        // Sources whose content is kept (*.c): 8 KiB each.
        for (var i = 0; i < 40; i++)
        {
            _tree.File($"src/f{i:00}.c", new string((char)('a' + i % 26), 8192));
        }

        _detector.Start(new FileStateTable());
        _detector.Reconcile(new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(_tree.Root, CancellationToken.None).Snapshot);

        var batches = new List<int>();
        for (var rounds = 0; rounds < 100 && batches.Sum() < 41; rounds++)
        {
            _detector.ResolveDue(500, long.MaxValue, foundMaxBytes: 32 * 1024);
            // The bound is reached by the event that crosses it, never by more.
            Assert.InRange(_detector.RecordedBytes, 1, 32 * 1024 + 8192 + 1024);
            batches.Add(_detector.TakeBatch()!.Events.Count);
        }

        Assert.Equal(41, batches.Sum());
        Assert.True(batches.Count >= 8, $"batches of {string.Join(", ", batches)} events");

        // Not at all with a bound of 0 (the spool is busy). (The watch's own report of the new file is not read here.)
        _tree.File("src/g.c", "int g;\n");
        _detector.Reconcile(new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(_tree.Root, CancellationToken.None).Snapshot);
        _detector.ResolveDue(500, long.MaxValue, foundMaxBytes: 0);
        Assert.Equal(0, _detector.RecordedEvents);
        _detector.ResolveDue(500, long.MaxValue);
        Assert.Equal(1, _detector.RecordedEvents);
    }
}
