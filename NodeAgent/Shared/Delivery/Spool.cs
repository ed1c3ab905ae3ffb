namespace NodeAgent.Shared.Delivery;

/// <summary>
/// Records taken but not yet stored, oldest first, held in memory while the database cannot be reached. Bounded by
/// <see cref="SpoolLimits.Capacity"/> records and by <see cref="SpoolLimits.MaxWeight"/> held in distinct shared parts
/// (consecutive unchanged scans share one list, so they cost a few hundred bytes each); past either bound the oldest
/// waiting record is dropped, logged and counted (never the one being stored, nor the newest).
/// </summary>
public sealed class Spool<T> where T : class
{
    private readonly Lock _lock = new();
    private readonly LinkedList<T> _pending = new();
    private readonly Dictionary<object, int> _sharedUses = new(ReferenceEqualityComparer.Instance);
    private readonly SemaphoreSlim _signal = new(0);
    private readonly SpoolLimits _limits;
    private readonly RecordKind<T> _kind;
    private readonly DeliveryOutcomes<T> _outcomes;
    private T? _inFlight;
    private long _weight;

    public Spool(SpoolLimits limits, RecordKind<T> kind, DeliveryOutcomes<T> outcomes)
    {
        _limits = limits;
        _kind = kind;
        _outcomes = outcomes;
    }

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

    /// <summary>The weight of the distinct shared parts that waiting records hold.</summary>
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

    public void Add(T record)
    {
        lock (_lock)
        {
            if (_pending.Last?.Value is { } previous)
            {
                record = _kind.ShareWithPrevious(previous, record);
            }

            Retain(record);
            _pending.AddLast(record);
            while (_pending.Count > _limits.Capacity || (_weight > _limits.MaxWeight && _pending.Count > 1))
            {
                var victim = _pending.First!;
                if (ReferenceEquals(victim.Value, _inFlight))
                {
                    victim = victim.Next!;
                }

                if (victim == _pending.Last)
                {
                    break;
                }

                _pending.Remove(victim);
                Release(victim.Value);
                _outcomes.Dropped(victim.Value, _limits);
            }
        }

        _signal.Release();
    }

    /// <summary>Waits for the oldest waiting record and returns it without removing it.</summary>
    public async Task<T> PeekAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_pending.First is { } first)
                {
                    _inFlight = first.Value;
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
            record = _inFlight = _pending.First?.Value;
            return record is not null;
        }
    }

    /// <summary>Removes a record once it is stored (or given up).</summary>
    public void Complete(T record)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_inFlight, record))
            {
                _inFlight = null;
            }

            if (_pending.Remove(record))
            {
                Release(record);
            }
        }
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
