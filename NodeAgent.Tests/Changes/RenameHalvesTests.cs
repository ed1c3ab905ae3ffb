using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Changes;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>
/// The two halves of a real rename, read from real inotify but handed to the detector as two reads, with the clock in
/// the test's hands: how long the first half waits for the second before it is taken for a move out of the tree.
/// </summary>
public sealed class RenameHalvesTests : IDisposable
{
    private readonly DetectorOnTree _on = new();
    private readonly byte[] _buffer = new byte[64 * 1024];

    public RenameHalvesTests()
    {
        Tree.File("a/x/1.c", "1");
        Tree.File("a/x/y/2.c", "2");
        Tree.Dir("b");
        Detector.Start(new FileStateTable());
        Detector.Reconcile(new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(Tree.Root, CancellationToken.None).Snapshot);
        Detector.ResolveDue();
        Assert.Equal(6, Detector.TakeBatch()!.Events.Count);
    }

    private TempTree Tree => _on.Tree;

    private FakeTimeProvider Clock => _on.Time;

    private ChangeDetector Detector => _on.Detector;

    public void Dispose() => _on.Dispose();

    [Fact]
    public void Second_half_read_within_the_pairing_timeout_makes_one_rename()
    {
        var (first, second) = RenameReadInTwo("mv a/x b/x");

        Detector.OnEvents(first);
        Clock.Advance(TimeSpan.FromMilliseconds(20));
        ReadNothing();
        Detector.OnEvents(second);

        Assert.Equal(["rename b/x a/x"], Recorded());
    }

    [Fact]
    public void Second_half_read_late_because_the_loop_was_busy_still_makes_one_rename()
    {
        var (first, second) = RenameReadInTwo("mv a/x b/x");

        Detector.OnEvents(first);
        // No read began meanwhile: the second half may be waiting in the kernel's queue.
        Clock.Advance(TimeSpan.FromSeconds(5));
        Detector.OnEvents(second);

        Assert.Equal(["rename b/x a/x"], Recorded());
    }

    [Fact]
    public void First_half_alone_once_a_read_begun_after_the_pairing_timeout_found_nothing_is_a_delete_of_everything_below()
    {
        var (first, _) = RenameReadInTwo("mv a/x b/x");

        Detector.OnEvents(first);
        Clock.Advance(TimeSpan.FromMilliseconds(60));
        ReadNothing();

        Assert.Equal(["delete a/x/y/2.c", "delete a/x/y", "delete a/x/1.c", "delete a/x"], Recorded().Where(e => e.StartsWith("delete", StringComparison.Ordinal)));
    }

    /// <summary>Runs <paramref name="script"/> and reads its events, split after the first half of its rename.</summary>
    private (byte[] First, byte[] Second) RenameReadInTwo(string script)
    {
        Tree.Shell(script);
        var read = Detector.Read(_buffer, 1000);
        for (var offset = 0; offset < read;)
        {
            var mask = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(offset + 4));
            offset += 16 + (int)BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(offset + 12));
            if ((mask & Inotify.MovedFrom) != 0)
            {
                return (_buffer[..offset], _buffer[offset..read]);
            }
        }

        throw new InvalidOperationException("The script renamed nothing.");
    }

    private void ReadNothing()
    {
        Assert.Equal(0, Detector.Read(_buffer, 0));
        Detector.OnEvents([]);
    }

    /// <summary>What the detector records of what it was given: type, path and old path.</summary>
    private List<string> Recorded()
    {
        Detector.ResolveDue(all: true);
        return Detector.TakeBatch()?.Events.Select(e => $"{e.Type.ToString().ToLowerInvariant()} {Encoding.UTF8.GetString(e.Path)}"
            + (e.OldPath is null ? "" : $" {Encoding.UTF8.GetString(e.OldPath)}")).ToList() ?? [];
    }
}
