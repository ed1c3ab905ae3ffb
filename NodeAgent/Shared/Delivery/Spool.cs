namespace NodeAgent.Shared.Delivery;

/// <summary>
/// Records taken but not yet stored, oldest first, held in memory while the database cannot be reached. The bounds
/// (<see cref="SpoolLimits.Capacity"/> records, <see cref="SpoolLimits.MaxWeight"/> in distinct shared parts:
/// consecutive unchanged scans share one list) are hard: they count every record in memory, the one being collected
/// (reserved at the weight of the previous one), the one being stored and the ones waiting. To stay within them the
/// oldest waiting record is dropped (logged and counted), so in an outage the newest are kept. A record being stored
/// at that moment is never dropped; nor, to make room for a record not yet collected while no attempt has failed, is
/// one the store loop has not tried yet (while the database answers, storing what was collected comes before
/// collecting more): then the next record is not collected this time. The
/// one exception: with nothing else held, a single record larger than the weight bound is still accepted, since it
/// could otherwise never be stored.
/// </summary>
public sealed class Spool<T> where T : class
{
    private readonly Lock _lock = new();
    private readonly LinkedList<T> _pending = new();
    private readonly Dictionary<object, int> _sharedUses = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<T> _retried = new(ReferenceEqualityComparer.Instance);
    private readonly SemaphoreSlim _signal = new(0);
    private readonly SpoolLimits _limits;
    private readonly RecordKind<T> _kind;
    private readonly DeliveryOutcomes<T> _outcomes;
    private T? _storing;

    // Since the last failed attempt to store, none since stored (an outage): what waits behind the failed record will
    // not be tried before it is stored either, so it is no longer protected as "not tried yet", and the newest are kept.
    private bool _failing;
    private long _weight;
    private long? _reserved;

    public Spool(SpoolLimits limits, RecordKind<T> kind, DeliveryOutcomes<T> outcomes)
    {
        _limits = limits;
        _kind = kind;
        _outcomes = outcomes;
    }

    public SpoolLimits Limits => _limits;

    /// <summary>Records held: waiting and being stored.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>What the held records add up to by <paramref name="measure"/> (file events in waiting batches).</summary>
    public long Total(Func<T, long> measure)
    {
        lock (_lock)
        {
            long total = 0;
            foreach (var record in _pending)
            {
                total += measure(record);
            }

            return total;
        }
    }

    /// <summary>The weight of the distinct shared parts that held records hold.</summary>
    public long Weight
    {
        get
        {
            lock (_lock)
            {
                return _weight;
            }
        }
    }

    /// <summary>
    /// Makes room for a record about to be collected, expected to weigh <paramref name="expectedWeight"/>, by dropping
    /// the oldest waiting records. Returns false when there is no room even so (the record being stored fills the
    /// bounds): the caller should not collect now. Until <see cref="Add"/> or <see cref="CancelReservation"/>, the
    /// reservation counts against the bounds.
    /// </summary>
    public bool TryReserve(long expectedWeight)
    {
        lock (_lock)
        {
            expectedWeight = Math.Max(0, expectedWeight);
            if (!MakeRoom(1, expectedWeight, onlyRetried: true))
            {
                return false;
            }

            _reserved = expectedWeight;
            return true;
        }
    }

    public void CancelReservation()
    {
        lock (_lock)
        {
            _reserved = null;
        }
    }

    /// <summary>Adds a collected record (ending its reservation), dropping the oldest waiting ones, or itself, to stay within the bounds.</summary>
    public void Add(T record)
    {
        lock (_lock)
        {
            _reserved = null;
            if (_pending.Last?.Value is { } previous)
            {
                record = _kind.ShareWithPrevious(previous, record);
            }

            var added = _sharedUses.ContainsKey(_kind.SharedPart(record)) ? 0 : _kind.Weight(record);
            if (!MakeRoom(1, added, onlyRetried: false))
            {
                _outcomes.Dropped(record, _limits);
                return;
            }

            Retain(record);
            _pending.AddLast(record);
        }

        _signal.Release();
    }

    /// <summary>Waits for the oldest waiting record and returns it, now being stored, without removing it.</summary>
    public async Task<T> PeekAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_pending.First is { } first)
                {
                    _storing = first.Value;
                    return first.Value;
                }
            }

            await _signal.WaitAsync(cancellationToken);
        }
    }

    public bool TryPeek(out T? record)
    {
        lock (_lock)
        {
            record = _storing = _pending.First?.Value;
            return record is not null;
        }
    }

    /// <summary>An attempt to store the record failed: it waits again (and may be dropped to make room) until the next attempt.</summary>
    public void Retry(T record)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_storing, record))
            {
                _storing = null;
            }

            _failing = true;
            if (_pending.Contains(record))
            {
                _retried.Add(record);
            }
        }
    }

    /// <summary>Removes a record once it is stored (or given up).</summary>
    public void Complete(T record)
    {
        lock (_lock)
        {
            _failing = false;
            if (ReferenceEquals(_storing, record))
            {
                _storing = null;
            }

            if (_pending.Remove(record))
            {
                Release(record);
            }
        }
    }

    /// <summary>
    /// Drops the oldest records not being stored (with <paramref name="onlyRetried"/>, only those the store loop has
    /// already tried, unless an attempt has failed since the last record was stored) until <paramref name="records"/> more records weighing <paramref name="weight"/> (plus
    /// any reservation) fit. With nothing else held, anything fits.
    /// </summary>
    private bool MakeRoom(int records, long weight, bool onlyRetried)
    {
        bool Fits() =>
            _pending.Count + records + (_reserved is null ? 0 : 1) <= _limits.Capacity
            && _weight + weight + (_reserved ?? 0) <= _limits.MaxWeight;

        while (!Fits())
        {
            var victim = _pending.First;
            while (victim is not null && (ReferenceEquals(victim.Value, _storing) || (onlyRetried && !_failing && !_retried.Contains(victim.Value))))
            {
                victim = victim.Next;
            }

            if (victim is null)
            {
                return _pending.Count == 0 && _reserved is null;
            }

            _pending.Remove(victim);
            Release(victim.Value);
            _outcomes.Dropped(victim.Value, _limits);
        }

        return true;
    }

    private void Retain(T record)
    {
        var shared = _kind.SharedPart(record);
        if (_sharedUses.TryGetValue(shared, out var uses))
        {
            _sharedUses[shared] = uses + 1;
        }
        else
        {
            _sharedUses[shared] = 1;
            _weight += _kind.Weight(record);
        }
    }

    private void Release(T record)
    {
        _retried.Remove(record);
        var shared = _kind.SharedPart(record);
        var uses = _sharedUses[shared] - 1;
        if (uses == 0)
        {
            _sharedUses.Remove(shared);
            _weight -= _kind.Weight(record);
        }
        else
        {
            _sharedUses[shared] = uses;
        }
    }
}
