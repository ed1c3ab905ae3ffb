using NodeAgent.Shared.Tree;

namespace NodeAgent.Tests.Infrastructure;

/// <summary>A scanned entry copied out of a snapshot (which is read in order only), for assertions.</summary>
internal sealed record ScannedEntry(byte[] PathBytes, EntryType Type, long Size, DateTime ModifiedUtc, int Permissions)
{
    private static readonly long PostgresEpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

    public string Path => System.Text.Encoding.UTF8.GetString(PathBytes);

    /// <summary>The modification time as a timestamptz holds it: microseconds, truncated towards 2000-01-01 (as Npgsql writes a DateTime).</summary>
    public DateTime ModifiedAsStored => new((ModifiedUtc.Ticks - PostgresEpochTicks) / 10 * 10 + PostgresEpochTicks, DateTimeKind.Utc);
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
