using Microsoft.Extensions.Logging.Abstractions;
using NodeAgent.Changes;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>What a scan found that the state does not know (a first start's whole tree), as the detector takes it into batches.</summary>
public sealed class FoundBacklogTests : IDisposable
{
    private readonly DetectorOnTree _on = new();

    private TempTree Tree => _on.Tree;

    private ChangeDetector Detector => _on.Detector;

    public void Dispose() => _on.Dispose();

    [Fact]
    public void What_a_scan_found_goes_into_a_batch_only_up_to_its_byte_bound_snapshot_contents_included()
    {
        // Sources whose content is kept (*.c): 8 KiB each.
        for (var i = 0; i < 40; i++)
        {
            Tree.File($"src/f{i:00}.c", new string((char)('a' + i % 26), 8192));
        }

        Detector.Start(new FileStateTable());
        Detector.Reconcile(new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(Tree.Root, CancellationToken.None).Snapshot);

        var batches = new List<int>();
        for (var rounds = 0; rounds < 100 && batches.Sum() < 41; rounds++)
        {
            Detector.ResolveDue(500, long.MaxValue, foundMaxBytes: 32 * 1024);
            // The bound is reached by the event that crosses it, never by more.
            Assert.InRange(Detector.RecordedBytes, 1, 32 * 1024 + 8192 + 1024);
            batches.Add(Detector.TakeBatch()!.Events.Count);
        }

        Assert.Equal(41, batches.Sum());
        Assert.True(batches.Count >= 8, $"batches of {string.Join(", ", batches)} events");

        // Not at all with a bound of 0 (the spool is busy). (The watch's own report of the new file is not read here.)
        Tree.File("src/g.c", "int g;\n");
        Detector.Reconcile(new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(Tree.Root, CancellationToken.None).Snapshot);
        Detector.ResolveDue(500, long.MaxValue, foundMaxBytes: 0);
        Assert.Equal(0, Detector.RecordedEvents);
        Detector.ResolveDue(500, long.MaxValue);
        Assert.Equal(1, Detector.RecordedEvents);
    }
}
