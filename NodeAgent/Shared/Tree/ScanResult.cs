namespace NodeAgent.Shared.Tree;

/// <summary>A finished scan: its entries and what it had to pass over.</summary>
/// <param name="Vanished">entries that disappeared between being listed and being examined</param>
/// <param name="Unreadable">entries or directories that could not be examined or listed (permissions, I/O errors)</param>
public sealed record ScanResult(TreeSnapshot Snapshot, int Vanished, int Unreadable, TimeSpan Duration);
