namespace NodeAgent.Shared.Delivery;

/// <summary>Writes records of one kind to the database; each call stores one record whole or not at all, idempotently.</summary>
public interface IRecordStore<in T>
{
    /// <summary>Brings the schema up to date and warms a connection (called once before the first record, and may be repeated).</summary>
    Task PrepareAsync(CancellationToken cancellationToken);

    Task StoreAsync(T record, CancellationToken cancellationToken);
}
