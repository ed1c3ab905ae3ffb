using System.Threading.Channels;

namespace NodeAgent.Shared.Tree;

/// <summary>
/// A scan's entries in tree order while the walk is still going: each run of the root's own entries and each
/// top-level subtree, as soon as it and everything before it are walked, so that a reader can store the list while
/// the rest is walked. The walker goes on appending to the lists it reads from: a published segment is never written
/// again, and the lists' blocks only ever grow (see <see cref="BlockBuffer"/>).
/// </summary>
internal sealed class ScanSegments
{
    private readonly Channel<TreeSnapshot.Segment> _channel =
        Channel.CreateUnbounded<TreeSnapshot.Segment>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    /// <summary>The segments of a finished snapshot, all at once.</summary>
    public static ScanSegments Of(TreeSnapshot snapshot)
    {
        var segments = new ScanSegments();
        foreach (var segment in snapshot.Segments)
        {
            segments.Publish(segment);
        }

        segments.Complete();
        return segments;
    }

    /// <summary>The segments in tree order, until the walk ends; a walk that failed ends the reading with its error.</summary>
    public IAsyncEnumerable<TreeSnapshot.Segment> ReadAllAsync(CancellationToken cancellationToken) => _channel.Reader.ReadAllAsync(cancellationToken);

    internal void Publish(TreeSnapshot.Segment segment) => _channel.Writer.TryWrite(segment);

    internal void Complete(Exception? error = null) => _channel.Writer.TryComplete(error);
}
