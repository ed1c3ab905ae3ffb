namespace NodeAgent.Shared.Delivery;

/// <summary>
/// What the delivery pipeline needs to know about one kind of record (a scan, a file event, a process event): how
/// to name it in log lines, and how much memory it holds while it waits in the <see cref="Spool{T}"/>.
/// </summary>
public abstract class RecordKind<T> where T : class
{
    /// <summary>"scan"; <see cref="Plural"/> is "scans".</summary>
    public abstract string Noun { get; }

    public abstract string Plural { get; }

    /// <summary>What <see cref="SpoolLimits.MaxWeight"/> counts, plural ("entries").</summary>
    public virtual string WeightUnit => Plural;

    /// <summary>One record for a log line: "the scan of node n-1 collected at 2026-11-26T01:02:03Z".</summary>
    public abstract string Describe(T record);

    /// <summary>
    /// The part of a record that several waiting records may hold together (a list of entries), counted once against
    /// <see cref="SpoolLimits.MaxWeight"/> however many records hold it; by default the record itself.
    /// </summary>
    public virtual object SharedPart(T record) => record;

    /// <summary>The weight of a record's <see cref="SharedPart"/>; by default 1.</summary>
    public virtual long Weight(T record) => 1;

    /// <summary>A record to spool after <paramref name="previous"/>, holding the same shared part when their contents are equal.</summary>
    public virtual T ShareWithPrevious(T previous, T next) => next;
}

/// <summary>At most <paramref name="Capacity"/> records, holding at most <paramref name="MaxWeight"/> in shared parts.</summary>
public sealed record SpoolLimits(int Capacity, long MaxWeight);
