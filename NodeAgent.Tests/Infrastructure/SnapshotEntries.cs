using NodeAgent.Shared.Tree;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>A scanned entry copied out of a snapshot (which is read in order only), for assertions.</summary>
internal sealed record ScannedEntry(byte[] PathBytes, EntryType Type, long Size, DateTime ModifiedUtc, int Permissions)
{
    public string Path => System.Text.Encoding.UTF8.GetString(PathBytes);
}

internal static class SnapshotEntries
{
    public static List<ScannedEntry> Entries(this TreeSnapshot snapshot)
    {
        var entries = new List<ScannedEntry>(snapshot.Count);
        foreach (var entry in snapshot)
        {
            entries.Add(new ScannedEntry(entry.PathBytes.ToArray(), entry.Type, entry.Size, entry.ModifiedUtc, entry.Permissions));
        }

        return entries;
    }
}
