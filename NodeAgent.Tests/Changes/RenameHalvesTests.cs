using System.Diagnostics.Metrics;
using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NodeAgent.Changes;
using NodeAgent.Shared.Telemetry;
using NodeAgent.Shared.Tree;
using NodeAgent.Tests.Infrastructure;

namespace NodeAgent.Tests.Changes;

/// <summary>
/// The two halves of a real rename, read from real inotify but handed to the detector as two reads, with the clock in
/// the test's hands: how long the first half waits for the second before it is taken for a move out of the tree.
/// </summary>
public sealed class RenameHalvesTests : IDisposable
{
    private readonly TempTree _tree = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly AgentDiagnostics _diagnostics;
    private readonly FakeTimeProvider _time = new();
    private readonly ChangeDetector _detector;
    private readonly byte[] _buffer = new byte[64 * 1024];

    public RenameHalvesTests()
    {
        _tree.File("a/x/1.c", "1");
        _tree.File("a/x/y/2.c", "2");
        _tree.Dir("b");
        _diagnostics = new AgentDiagnostics(_services.GetRequiredService<IMeterFactory>());
        _detector = new ChangeDetector(ChangesSettings.Load(new ConfigurationBuilder().Build()), "node", _tree.Root, new ChangesMetrics(_diagnostics),
            _time, NullLogger.Instance);
        _detector.Start(new FileStateTable());
        _detector.Reconcile(new TreeScanner(NullLogger<TreeScanner>.Instance).Scan(_tree.Root, CancellationToken.None).Snapshot);
        _detector.ResolveDue();
        Assert.Equal(6, _detector.TakeBatch()!.Events.Count);
    }

    public void Dispose()
    {
        _detector.Dispose();
        _diagnostics.Dispose();
        _services.Dispose();
        _tree.Dispose();
    }

    [Fact]
    public void Second_half_read_within_the_pairing_timeout_makes_one_rename()
    {
        var (first, second) = RenameReadInTwo("mv a/x b/x");

        _detector.OnEvents(first);
        _time.Advance(TimeSpan.FromMilliseconds(20));
        ReadNothing();
        _detector.OnEvents(second);

        Assert.Equal(["rename b/x a/x"], Recorded());
    }

    [Fact]
    public void Second_half_read_late_because_the_loop_was_busy_still_makes_one_rename()
    {
        var (first, second) = RenameReadInTwo("mv a/x b/x");

        _detector.OnEvents(first);
        // No read began meanwhile: the second half may be waiting in the kernel's queue.
        _time.Advance(TimeSpan.FromSeconds(5));
        _detector.OnEvents(second);

        Assert.Equal(["rename b/x a/x"], Recorded());
    }

    [Fact]
    public void First_half_alone_once_a_read_begun_after_the_pairing_timeout_found_nothing_is_a_delete_of_everything_below()
    {
        var (first, _) = RenameReadInTwo("mv a/x b/x");

        _detector.OnEvents(first);
        _time.Advance(TimeSpan.FromMilliseconds(60));
        ReadNothing();

        Assert.Equal(["delete a/x/y/2.c", "delete a/x/y", "delete a/x/1.c", "delete a/x"], Recorded().Where(e => e.StartsWith("delete", StringComparison.Ordinal)));
    }

    /// <summary>Runs <paramref name="script"/> and reads its events, split after the first half of its rename.</summary>
    private (byte[] First, byte[] Second) RenameReadInTwo(string script)
    {
        _tree.Shell(script);
        var read = _detector.Read(_buffer, 1000);
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
        Assert.Equal(0, _detector.Read(_buffer, 0));
        _detector.OnEvents([]);
    }

    /// <summary>What the detector records of what it was given: type, path and old path.</summary>
    private List<string> Recorded()
    {
        _detector.ResolveDue(all: true);
        return _detector.TakeBatch()?.Events.Select(e => $"{e.Type.ToString().ToLowerInvariant()} {Encoding.UTF8.GetString(e.Path)}"
            + (e.OldPath is null ? "" : $" {Encoding.UTF8.GetString(e.OldPath)}")).ToList() ?? [];
    }
}
