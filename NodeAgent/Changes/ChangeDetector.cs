using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Native;
using NodeAgent.Shared.Tree;

namespace NodeAgent.Changes;

/// <summary>
/// Turns what inotify reports, and what scans find, into file events. Raw events only say "look at this path again"
/// (they are folded per path: a quiet window after the last one, at most a maximum wait after the first); a rename
/// is the one raw event taken as it is, because it links two paths. Looking again means comparing the entry on disk
/// with the current state, so the event stored is whatever changed, once, whichever way it was noticed: a scan marks
/// the paths where it disagrees with the state, and the same comparison decides. Single-threaded: the loop calls it.
/// </summary>
internal sealed partial class ChangeDetector : IDisposable
{
    private const int DtDirectory = 4;
    private const int DtUnknown = 0;

    /// <summary>Paths waiting whose room is kept once they are all looked at; a burst's larger room is given back.</summary>
    private const int PendingKeptCapacity = 4096;

    /// <summary>
    /// How long after the first half of a rename was read a read must begin for its missing second half to mean that the
    /// entry left the tree. The kernel queues both halves in the same rename call, microseconds apart, so a read that
    /// begins this much later has the second half if there is one; the margin covers the renaming thread being
    /// preempted between the two. It is measured from reads, not from the clock alone, so a loop that was busy
    /// elsewhere never takes a rename it has not read yet for a move out.
    /// </summary>
    private static readonly TimeSpan MovePairingTimeout = TimeSpan.FromMilliseconds(50);

    private readonly ChangesSettings _settings;
    private readonly string _nodeName;
    private readonly string _mountPath;
    private readonly byte[] _mountPrefix;
    private readonly ChangesMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private FileStateTable _state = new();
    private readonly EventIds _ids;
    private readonly FileInspector _inspector;
    private readonly Dictionary<int, byte[]> _watchPaths = [];
    private readonly Dictionary<byte[], int> _watches = new(PathComparer.Instance);
    private readonly HashSet<byte[]> _unwatched = new(PathComparer.Instance);
    private readonly Dictionary<byte[], Pending> _pending = new(PathComparer.Instance);
    private readonly HardLinks _links = new();
    private readonly Queue<byte[]> _due = new();
    private FoundPaths? _found;
    private readonly Dictionary<uint, MoveFrom> _movesFrom = [];
    private List<FileEvent> _events = [];
    private long _eventBytes;
    private Dictionary<byte[], FileMeta?> _changes = new(PathComparer.Instance);
    // For the paths of _changes whose hash is not held (an entry moved, or its mode changed): the path whose stored row
    // has it, as stored before this batch (the entry's path then).
    private Dictionary<byte[], byte[]> _hashFrom = new(PathComparer.Instance);
    private Inotify? _inotify;
    private long _readStarted;
    private bool _rescanWanted;
    private bool _pendingGrown;
    private bool _overflowReported;
    private bool _watchLimitReported;

    public ChangeDetector(ChangesSettings settings, string nodeName, string mountPath, ChangesMetrics metrics, TimeProvider time, ILogger logger)
    {
        _settings = settings;
        _nodeName = nodeName;
        _mountPath = mountPath;
        _mountPrefix = Encoding.UTF8.GetBytes(mountPath.TrimEnd('/') + "/");
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _inspector = new FileInspector(settings);
        _ids = new EventIds(time);
    }

    public int Watches => _watchPaths.Count;

    public int Unwatched => _unwatched.Count;

    public int PendingPaths => _pending.Count;

    /// <summary>Memory the state of every path holds (packed run and overlay), read from any thread.</summary>
    public long StateBytes => _state.ApproximateBytes;

    /// <summary>Memory held by the scan whose differences are still being looked at, read from any thread.</summary>
    public long FoundScanBytes => _found?.Snapshot.ApproximateBytes ?? 0;

    /// <summary>Events recorded and not yet taken (<see cref="TakeBatch"/>), and the memory they hold.</summary>
    public int RecordedEvents => _events.Count;

    public long RecordedBytes => _eventBytes;

    /// <summary>Starts from the stored state, then watches the whole tree (before the first scan, so nothing slips between).</summary>
    public void Start(FileStateTable stored)
    {
        _state = stored;
        _inspector.Open(_mountPath);
        _inotify = new Inotify();
        WatchTree([], markEntries: false, ChangeSource.Scan);
    }

    /// <summary>Lets go of the state before the stored one is read again (it is about to be replaced: never both in memory).</summary>
    public void ForgetState()
    {
        _state = new FileStateTable();
        _found = null;
    }

    /// <summary>Replaces the state with the stored one (after a batch was lost), keeping the watches; a scan should follow.</summary>
    public void Reload(FileStateTable stored) => _state = stored;

    /// <summary>Reads raw events; what it returns goes to <see cref="OnEvents"/>, even when it is nothing (a read that found the queue empty ends renames' waits).</summary>
    public int Read(byte[] buffer, int timeoutMs)
    {
        _readStarted = _time.GetTimestamp();
        return _inotify!.Read(buffer, timeoutMs);
    }

    /// <summary>True once after something made the watch unreliable (queue overflow, watch limit, watch error): a full scan should follow.</summary>
    public bool TakeRescanRequest()
    {
        var wanted = _rescanWanted;
        _rescanWanted = false;
        return wanted;
    }

    /// <summary>A rescan asked for by <see cref="TakeRescanRequest"/> has been reconciled: a later overflow is news again.</summary>
    private void RescanDone() => _overflowReported = false;

    public void OnEvents(ReadOnlySpan<byte> buffer)
    {
        // Most reads of a quiet tree bring nothing: they only end renames' waits (below).
        if (!buffer.IsEmpty)
        {
            var observedAt = _time.GetUtcNow();
            var now = _time.GetTimestamp();
            Inotify.Parse(buffer, e => OnEvent(e, observedAt, now));
        }

        if (_movesFrom.Count > 0)
        {
            var timeout = MovePairingTimeout.TotalSeconds * _time.TimestampFrequency;
            foreach (var (cookie, move) in _movesFrom.Where(m => _readStarted - m.Value.ReadAt >= timeout).ToList())
            {
                _movesFrom.Remove(cookie);
                MovedOut(move);
            }
        }
    }

    /// <summary>
    /// The first half of a rename whose second half never came: the entry left the tree (or went somewhere not
    /// watched). Whatever was known at and below its path is deleted (<see cref="Resolve"/>), and its watches end now,
    /// so that nothing done to it where it went is taken for a change at its old path.
    /// </summary>
    private void MovedOut(MoveFrom move)
    {
        foreach (var (path, wd) in move.Watches ?? [])
        {
            // A watch that a scan took up again at a path in the tree (a rename whose second half was lost) stays.
            if (_watchPaths.ContainsKey(wd) && !(_watches.TryGetValue(_watchPaths[wd], out var current) && current == wd))
            {
                _inotify!.RemoveWatch(wd);
                _watchPaths.Remove(wd);
            }
        }

        ref var pending = ref CollectionsMarshal.GetValueRefOrAddDefault(_pending, move.Path, out var exists);
        pending = exists
            ? pending with { Done = true, MovedOut = true }
            : new Pending(move.ReadAt, move.ReadAt, move.ObservedAt, ChangeSource.Watch, Done: true, MovedOut: true);
        _pendingGrown |= _pending.Count > PendingKeptCapacity;
    }

    private void OnEvent(Inotify.RawEvent e, DateTimeOffset observedAt, long now)
    {
        if (e.Is(Inotify.QueueOverflow))
        {
            _metrics.Overflows.Add(1);
            // Their second halves, if any, were lost: each is taken as a move out, and the rescan finds where they went.
            foreach (var move in _movesFrom.Values)
            {
                MovedOut(move);
            }

            _movesFrom.Clear();
            RequestRescan("overflow");
            if (!_overflowReported)
            {
                _overflowReported = true;
                LogOverflow(_logger, _mountPath, Inotify.MaxQueuedEvents());
            }

            return;
        }

        if (!_watchPaths.TryGetValue(e.Wd, out var directory))
        {
            return;
        }

        if (e.Is(Inotify.Ignored))
        {
            ForgetWatch(e.Wd);
            return;
        }

        if (e.Is(Inotify.DeleteSelf | Inotify.MoveSelf) || e.Name.Length == 0)
        {
            // Reported by the parent's watch as the entry's own change; the root itself has no entry.
            if (directory.Length == 0 && e.Is(Inotify.DeleteSelf | Inotify.MoveSelf))
            {
                LogRootGone(_logger, _mountPath);
            }

            return;
        }

        var path = Join(directory, e.Name);
        if (_settings.Exclude.Matches(path))
        {
            return;
        }

        var isDirectory = e.Is(Inotify.IsDirectory);
        if (e.Is(Inotify.MovedFrom))
        {
            // Its watches wait aside until the second half says where it went: a directory made at the same name
            // meanwhile gets watches of its own.
            _movesFrom[e.Cookie] = new MoveFrom(path, isDirectory ? DetachWatches(path) : null, observedAt, now);
            return;
        }

        if (e.Is(Inotify.MovedTo) && _movesFrom.Remove(e.Cookie, out var from))
        {
            Rename(from, path, isDirectory, observedAt, now);
            return;
        }

        // A file that was already known and has just been closed after writing is done: it is looked at without waiting
        // for the quiet window. A new file waits for it (it may be an editor's temporary file, about to be renamed).
        var done = e.Is(Inotify.CloseWrite) && _state.TryGet(path, out _);
        Touch(path, ChangeSource.Watch, observedAt, now, done);
        if (isDirectory && e.Is(Inotify.Create | Inotify.MovedTo))
        {
            // Watched at once, so that nothing created inside it is missed; what is already there becomes create events.
            WatchTree(path, markEntries: true, ChangeSource.Watch);
        }
    }

    /// <summary>A path to look at again: at once when a scan found it, else after its burst of changes.</summary>
    private void Touch(byte[] path, ChangeSource source, DateTimeOffset observedAt, long now, bool done = false)
    {
        ref var pending = ref CollectionsMarshal.GetValueRefOrAddDefault(_pending, path, out var exists);
        if (!exists)
        {
            pending = new Pending(now, now, observedAt, source, done);
            _pendingGrown |= _pending.Count > PendingKeptCapacity;
            return;
        }

        if (source == ChangeSource.Watch)
        {
            _metrics.Coalesced.Add(1);
            pending = pending with { Last = now, ObservedAt = observedAt, Source = ChangeSource.Watch, Done = done };
        }
    }

    private void Rename(MoveFrom move, byte[] to, bool isDirectory, DateTimeOffset observedAt, long now)
    {
        var from = move.Path;
        foreach (var (path, wd) in move.Watches ?? [])
        {
            // Unless it ended meanwhile (the directory was deleted right after).
            if (_watchPaths.ContainsKey(wd))
            {
                var moved = Rebase(path, from, to);
                _watches[moved] = wd;
                _watchPaths[wd] = moved;
            }
        }

        MovePending(from, to);
        if (_state.TryGet(from, out var meta))
        {
            if (meta.Type == EntryType.Directory)
            {
                foreach (var below in _state.Below(from))
                {
                    _state.TryGet(below, out var child);
                    var hashFrom = HashSource(below, ref child);
                    _state.Remove(below);
                    _links.Forget(below);
                    var moved = Rebase(below, from, to);
                    _state.Set(moved, child);
                    Changed(below, null);
                    Changed(moved, child, hashFrom);
                }
            }

            // Known again under its new path once it is looked at (below).
            var movedFrom = HashSource(from, ref meta);
            _state.Remove(from);
            _links.Forget(from);
            _state.Set(to, meta);
            Changed(from, null);
            Changed(to, meta, movedFrom);
            Emit(FileEventType.Rename, to, from, meta, ChangeSource.Watch, FileFlags.None, null, observedAt, now, movedFrom);
        }

        // Its content may have changed just before (an editor writes a new file, then renames it over the old one).
        Touch(to, ChangeSource.Watch, observedAt, now);
        if (isDirectory)
        {
            WatchTree(to, markEntries: true, ChangeSource.Watch);
        }
    }

    /// <summary>
    /// Looks again at the paths whose burst has ended (or waited long enough, or that a scan found), until
    /// <paramref name="maxEvents"/> events are waiting to be taken; with <paramref name="all"/>, at every path the watch is
    /// waiting on (and none a scan found). The due
    /// paths are taken in byte order (a new directory's event comes before its files'), from a queue kept across calls
    /// so that a million paths found by a first scan are sorted once, not once per call. <paramref name="maxBytes"/>
    /// bounds the memory the waiting events hold (snapshot contents included). What scans found is looked at only while
    /// they hold less than <paramref name="foundMaxBytes"/> (0: not at all).
    /// </summary>
    public void ResolveDue(int maxEvents = int.MaxValue, long maxBytes = long.MaxValue, bool all = false, long foundMaxBytes = long.MaxValue)
    {
        if (_pending.Count == 0 && _found is null)
        {
            return;
        }

        var now = _time.GetTimestamp();
        if (_pending.Count > 0 && (_due.Count == 0 || all))
        {
            var due = new List<byte[]>();
            foreach (var (path, pending) in _pending)
            {
                if (all || IsDue(pending, now))
                {
                    due.Add(path);
                }
            }

            due.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
            _due.Clear();
            foreach (var path in due)
            {
                _due.Enqueue(path);
            }
        }

        while (_events.Count < maxEvents && _eventBytes < maxBytes && _due.TryDequeue(out var path))
        {
            if (_pending.TryGetValue(path, out var pending) && (all || (IsDue(pending, now) && !WaitsForRename(path))))
            {
                _pending.Remove(path);
                Resolve(path, pending);
            }
        }

        if (_pendingGrown && _pending.Count == 0 && _due.Count == 0)
        {
            _pendingGrown = false;
            _pending.TrimExcess(PendingKeptCapacity);
            _due.TrimExcess();
        }

        // Then what scans found, in tree order; a path the watch is also waiting on is left to the watch. Not at the
        // last call (all): a first scan's backlog may be a million files, and the next start's scan finds it again.
        if (all)
        {
            return;
        }

        var pendingBySpan = _pending.GetAlternateLookup<ReadOnlySpan<byte>>();
        while (_found is not null && _events.Count < maxEvents && _eventBytes < Math.Min(maxBytes, foundMaxBytes))
        {
            if (!_found.MoveNext())
            {
                _found = null;
                break;
            }

            if (!pendingBySpan.ContainsKey(_found.Path))
            {
                Resolve(_found.Path.ToArray(), new Pending(now, now, _found.ObservedAt, ChangeSource.Scan));
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="path"/> is at or below where the first half of a rename left, its second half not read
    /// yet: until it is known whether the entry moved within the tree or out, what is at the path now cannot be told
    /// from it (a directory made again at the name would be taken for the old one).
    /// </summary>
    private bool WaitsForRename(byte[] path)
    {
        foreach (var move in _movesFrom.Values)
        {
            if (path.AsSpan().SequenceEqual(move.Path) || TreeOrder.IsBelow(path, move.Path))
            {
                return true;
            }
        }

        return false;
    }

    private bool IsDue(Pending pending, long now) =>
        pending.Source == ChangeSource.Scan
        || pending.Done
        || now - pending.Last >= _settings.QuietWindow.TotalSeconds * _time.TimestampFrequency
        || now - pending.First >= _settings.MaxWait.TotalSeconds * _time.TimestampFrequency;

    private void Resolve(byte[] path, Pending pending)
    {
        var known = _state.TryGet(path, out var old);
        if (pending.MovedOut && known)
        {
            // Whatever is at the path now (made again since) is another entry: it is created afresh below.
            Delete(path, old, pending, endWatches: false);
            known = false;
        }

        var presence = _inspector.Stat(path, out var live, out var file, out var links);
        if (presence == FileInspector.Presence.Unreadable)
        {
            return;
        }

        _links.Seen(path, file, presence == FileInspector.Presence.Present && live.Type == EntryType.File ? links : 0);
        if (presence == FileInspector.Presence.Gone)
        {
            if (known)
            {
                Delete(path, old, pending);
            }

            return;
        }

        if (known && old.Type != live.Type)
        {
            Delete(path, old, pending);
            known = false;
        }

        if (!known)
        {
            var created = _inspector.Inspect(path, live);
            Record(FileEventType.Create, path, created, pending);
            // A directory made again at the name of one moved out may have had its entries looked at before the move
            // out was known (and been taken for the old ones, deleted since): they are looked at again.
            if (live.Type == EntryType.Directory && (pending.MovedOut || (!_watches.ContainsKey(path) && !_unwatched.Contains(path))))
            {
                WatchTree(path, markEntries: true, pending.Source);
            }

            return;
        }

        if (!old.SameContentMarkers(live))
        {
            Record(FileEventType.Modify, path, _inspector.Inspect(path, live), pending);
        }
        else if (old.Mode != live.Mode)
        {
            var hashFrom = HashSource(path, ref old);
            live.Sha256 = old.Sha256;
            live.Hashed = old.Hashed;
            live.HashHeld = old.HashHeld;
            Record(FileEventType.Attrib, path, new FileInspector.Inspection(live, old.Hashed || live.Type != EntryType.File ? FileFlags.None : FileFlags.NotHashed, null), pending, hashFrom);
        }
        else
        {
            return;
        }

        // The other links share the content and mode just recorded, but inotify reported only the path written through.
        foreach (var other in _links.OthersOf(path))
        {
            Touch(other, pending.Source, pending.ObservedAt, _time.GetTimestamp(), done: true);
        }
    }

    private void Record(FileEventType type, byte[] path, FileInspector.Inspection inspection, Pending pending, byte[]? hashFrom = null)
    {
        _state.Set(path, inspection.Meta);
        Changed(path, inspection.Meta, hashFrom);
        Emit(type, path, null, inspection.Meta, pending.Source, inspection.Flags, inspection.Content, pending.ObservedAt, pending.Last, hashFrom);
    }

    /// <summary>What the batch leaves at <paramref name="path"/>: <paramref name="meta"/>, or nothing (null).</summary>
    private void Changed(byte[] path, FileMeta? meta, byte[]? hashFrom = null)
    {
        _changes[path] = meta;
        if (hashFrom is null)
        {
            _hashFrom.Remove(path);
        }
        else
        {
            _hashFrom[path] = hashFrom;
        }
    }

    /// <summary>
    /// Where the hash of the state <paramref name="meta"/> read at <paramref name="path"/> is, when the state does not hold
    /// it: the path of its stored row (null when it is held, or there is none). A change earlier in this batch of the
    /// same size and time may hold it (taken into <paramref name="meta"/>), or have moved the entry here from another path.
    /// </summary>
    private byte[]? HashSource(byte[] path, ref FileMeta meta)
    {
        if (!meta.Hashed || meta.HashHeld)
        {
            return null;
        }

        if (_changes.TryGetValue(path, out var changed) && changed is { HashHeld: true } held
            && held.Size == meta.Size && held.MtimeMicros == meta.MtimeMicros)
        {
            meta.Sha256 = held.Sha256;
            meta.HashHeld = true;
            return null;
        }

        return _hashFrom.TryGetValue(path, out var from) ? from : path;
    }

    /// <summary>A path is gone: everything known below it (deepest first), then itself; with <paramref name="endWatches"/>, their watches end.</summary>
    private void Delete(byte[] path, FileMeta old, Pending pending, bool endWatches = true)
    {
        if (old.Type == EntryType.Directory)
        {
            foreach (var below in _state.Below(path))
            {
                _state.TryGet(below, out var meta);
                var hashFrom = HashSource(below, ref meta);
                _state.Remove(below);
                _links.Forget(below);
                Changed(below, null);
                Emit(FileEventType.Delete, below, null, meta, pending.Source, FileFlags.None, null, pending.ObservedAt, pending.Last, hashFrom);
            }

            if (endWatches)
            {
                foreach (var (_, wd) in DetachWatches(path))
                {
                    _inotify!.RemoveWatch(wd);
                    _watchPaths.Remove(wd);
                }
            }
        }

        var oldHashFrom = HashSource(path, ref old);
        _state.Remove(path);
        _links.Forget(path);
        Changed(path, null);
        Emit(FileEventType.Delete, path, null, old, pending.Source, FileFlags.None, null, pending.ObservedAt, pending.Last, oldHashFrom);
    }

    private void Emit(FileEventType type, byte[] path, byte[]? oldPath, FileMeta meta, ChangeSource source, FileFlags flags, byte[]? content,
        DateTimeOffset occurredAt, long observedTimestamp, byte[]? hashFrom = null)
    {
        if (!meta.Hashed && meta.Type == EntryType.File && type != FileEventType.Delete)
        {
            flags |= FileFlags.NotHashed;
        }

        var recorded = new FileEvent(_ids.Next(), type, path, oldPath, occurredAt, meta, source, flags, content, observedTimestamp) { HashFrom = hashFrom };
        _events.Add(recorded);
        _eventBytes += recorded.ApproximateBytes;
        _metrics.FileEvents.Add(1, new KeyValuePair<string, object?>("event_type", FileEvent.Name(type)));
    }

    /// <summary>
    /// Compares a scan with the current state, both in tree order and in step: every path where they disagree (new,
    /// changed, or no longer found) is looked at again at once, and whatever really changed is recorded as seen by the
    /// scan. A directory the scan found that is not watched (created while events were lost) is watched now. What
    /// differs is kept as one bit per scanned entry (and the paths no longer found), not as copies of paths.
    /// </summary>
    public void Reconcile(TreeSnapshot snapshot)
    {
        using var activity = Shared.Telemetry.AgentDiagnostics.ActivitySource.StartActivity(ChangesMetrics.ReconcileActivityName);
        activity?.SetTag("scan.entries", snapshot.Count);
        var observedAt = _time.GetUtcNow();

        // A newer scan supersedes what an older one found and is not looked at yet: whatever of that still differs
        // from the state is found again.
        _found = null;
        var differing = new ulong[(snapshot.Count + 63) / 64];
        var differences = 0;
        var gone = new List<byte[]>();
        var unwatched = new List<byte[]>();
        var watches = _watches.GetAlternateLookup<ReadOnlySpan<byte>>();
        byte[]? excluded = null;
        var state = _state.ReadAll();
        var more = state.MoveNext();
        var index = -1;
        foreach (var entry in snapshot)
        {
            index++;
            var path = entry.PathBytes;
            if (excluded is not null && TreeOrder.IsBelow(path, excluded))
            {
                continue;
            }

            excluded = null;
            if (_settings.Exclude.Matches(path))
            {
                if (entry.Type == EntryType.Directory && _settings.Exclude.ExcludesEverythingBelow(path))
                {
                    excluded = path.ToArray();
                }

                continue;
            }

            while (more && TreeOrder.Compare(state.Path, path) < 0)
            {
                gone.Add(state.Path.ToArray());
                more = state.MoveNext();
            }

            var same = false;
            if (more && TreeOrder.Compare(state.Path, path) == 0)
            {
                same = state.Meta.SameAs(new FileMeta
                {
                    Type = entry.Type,
                    Mode = entry.Permissions,
                    Size = entry.Size,
                    MtimeMicros = entry.MtimeMicros,
                });
                more = state.MoveNext();
            }

            if (!same)
            {
                differing[index >> 6] |= 1UL << (index & 63);
                differences++;
            }

            if (entry.Type == EntryType.Directory && !watches.ContainsKey(path))
            {
                unwatched.Add(path.ToArray());
            }
        }

        for (; more; more = state.MoveNext())
        {
            gone.Add(state.Path.ToArray());
        }

        differences += gone.Count;
        if (differences > 0)
        {
            _found = new FoundPaths(snapshot, differing, gone, observedAt);
        }

        foreach (var directory in unwatched)
        {
            WatchTree(directory, markEntries: true, ChangeSource.Scan);
        }

        activity?.SetTag("scan.differences", differences);
        RescanDone();
        LogReconciled(_logger, snapshot.Count, differences, _state.Count, _state.ApproximateBytes / (1024 * 1024));
    }

    /// <summary>The events recorded since the last call, with the state they leave, as one batch (null when there are none).</summary>
    public FileEventBatch? TakeBatch()
    {
        if (_events.Count == 0)
        {
            return null;
        }

        var batch = new FileEventBatch(_nodeName, _mountPath, _events, _changes, _hashFrom);
        _events = [];
        _eventBytes = 0;
        _changes = new Dictionary<byte[], FileMeta?>(PathComparer.Instance);
        _hashFrom = new Dictionary<byte[], byte[]>(PathComparer.Instance);
        return batch;
    }

    /// <summary>
    /// Watches <paramref name="top"/> and every directory below it that is not excluded, each watched before it is
    /// listed (an entry created meanwhile is reported by the watch, or found by the listing). With
    /// <paramref name="markEntries"/>, every entry found is looked at (a tree moved or copied in).
    /// </summary>
    private void WatchTree(byte[] top, bool markEntries, ChangeSource source)
    {
        var observedAt = _time.GetUtcNow();
        var now = _time.GetTimestamp();
        var stack = new Stack<byte[]>();
        stack.Push(top);
        while (stack.Count > 0)
        {
            var directory = stack.Pop();
            if (directory.Length > 0 && _settings.Exclude.ExcludesEverythingBelow(directory))
            {
                continue;
            }

            if (!AddWatch(directory))
            {
                continue;
            }

            ListDirectory(directory, (name, type) =>
            {
                var path = Join(directory, name);
                if (_settings.Exclude.Matches(path))
                {
                    // An excluded directory whose entries are not excluded (a pattern naming only it) is still walked.
                    if (type == DtDirectory && !_settings.Exclude.ExcludesEverythingBelow(path))
                    {
                        stack.Push(path);
                    }

                    return;
                }

                if (markEntries)
                {
                    Touch(path, source, observedAt, now);
                }

                if (type == DtDirectory)
                {
                    stack.Push(path);
                }
            });
        }
    }

    private bool AddWatch(byte[] directory)
    {
        Span<byte> absolute = stackalloc byte[_mountPrefix.Length + directory.Length + 1];
        _mountPrefix.CopyTo(absolute);
        directory.CopyTo(absolute[_mountPrefix.Length..]);
        absolute[^1] = 0;
        var wd = _inotify!.AddWatch(absolute);
        if (wd >= 0)
        {
            if (_watchPaths.TryGetValue(wd, out var previous))
            {
                _watches.Remove(previous);
            }

            _watchPaths[wd] = directory;
            _watches[directory] = wd;
            _unwatched.Remove(directory);
            return true;
        }

        var errno = -wd;
        if (errno == Inotify.ENOSPC)
        {
            _unwatched.Add(directory);
            if (!_watchLimitReported)
            {
                _watchLimitReported = true;
                RequestRescan("watch_limit");
                LogWatchLimit(_logger, Inotify.MaxUserWatches(), PathText.ToText(directory), _watchPaths.Count);
            }
        }
        else if (errno is not (NativeMethods.ENOENT or NativeMethods.ENOTDIR))
        {
            RequestRescan("watch_error");
            LogWatchFailed(_logger, PathText.ToText(directory), NativeMethods.Describe(errno));
        }

        return false;
    }

    private void RequestRescan(string reason)
    {
        if (!_rescanWanted)
        {
            _metrics.Rescans.Add(1, new KeyValuePair<string, object?>("reason", reason));
        }

        _rescanWanted = true;
    }

    private void ForgetWatch(int wd)
    {
        if (_watchPaths.Remove(wd, out var path) && _watches.TryGetValue(path, out var current) && current == wd)
        {
            _watches.Remove(path);
        }
    }

    /// <summary>Takes the watches of <paramref name="top"/> and below out of the paths watched (their descriptors still name them).</summary>
    private List<(byte[] Path, int Wd)> DetachWatches(byte[] top)
    {
        var detached = new List<(byte[] Path, int Wd)>();
        foreach (var (path, wd) in _watches)
        {
            if (path.AsSpan().SequenceEqual(top) || TreeOrder.IsBelow(path, top))
            {
                detached.Add((path, wd));
            }
        }

        foreach (var (path, _) in detached)
        {
            _watches.Remove(path);
        }

        return detached;
    }

    private void MovePending(byte[] from, byte[] to)
    {
        foreach (var (path, pending) in _pending.Where(p => p.Key.AsSpan().SequenceEqual(from) || TreeOrder.IsBelow(p.Key, from)).ToList())
        {
            _pending.Remove(path);
            var moved = Rebase(path, from, to);
            _pending[moved] = _pending.TryGetValue(moved, out var existing) ? existing with { First = Math.Min(existing.First, pending.First) } : pending;
        }
    }

    private static byte[] Rebase(byte[] path, byte[] from, byte[] to) => [.. to, .. path.AsSpan(from.Length)];

    private static byte[] Join(byte[] directory, byte[] name) => directory.Length == 0 ? name : [.. directory, (byte)'/', .. name];

    /// <summary>Lists a directory's entries with their types (from the directory itself, so it costs one call per directory, not per entry).</summary>
    private unsafe void ListDirectory(byte[] directory, Action<byte[], int> onEntry)
    {
        var fd = NativeMethods.OpenAt(_inspector.RootFd, directory.Length == 0 ? "."u8 : directory, MountDirectory.DirectoryFlags | NativeMethods.ONoFollow);
        if (fd < 0)
        {
            return;
        }

        var dir = NativeMethods.FdOpenDir(fd);
        if (dir == 0)
        {
            NativeMethods.Close(fd);
            return;
        }

        try
        {
            while (NativeMethods.ReadDir(dir) is var entry && entry != null)
            {
                var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + NativeMethods.DirentNameOffset);
                if (name is [(byte)'.'] or [(byte)'.', (byte)'.'])
                {
                    continue;
                }

                int type = entry[NativeMethods.DirentNameOffset - 1];
                var bytes = name.ToArray();
                if (type == DtUnknown)
                {
                    type = _inspector.Stat(Join(directory, bytes), out var meta) == FileInspector.Presence.Present && meta.Type == EntryType.Directory
                        ? DtDirectory
                        : DtUnknown;
                }

                onEntry(bytes, type);
            }
        }
        finally
        {
            NativeMethods.CloseDir(dir);
        }
    }

    public void Dispose()
    {
        _inotify?.Dispose();
        _inspector.Dispose();
    }

    /// <summary>
    /// What a scan found to differ from the state, taken in tree order: the scanned entries whose bit is set (read from
    /// the scan again), then the paths the scan no longer found.
    /// </summary>
    private sealed class FoundPaths(TreeSnapshot snapshot, ulong[] differing, List<byte[]> gone, DateTimeOffset observedAt)
    {
        private TreeSnapshot.Enumerator _entries = snapshot.GetEnumerator();
        private int _index = -1;
        private int _gone = -1;
        private byte[] _path = [];
        private int _pathLength;

        public DateTimeOffset ObservedAt => observedAt;

        public TreeSnapshot Snapshot => snapshot;

        public ReadOnlySpan<byte> Path => _path.AsSpan(0, _pathLength);

        public bool MoveNext()
        {
            if (_gone < 0)
            {
                while (_entries.MoveNext())
                {
                    _index++;
                    if ((differing[_index >> 6] & (1UL << (_index & 63))) != 0)
                    {
                        var path = _entries.Current.PathBytes;
                        if (path.Length > _path.Length)
                        {
                            _path = new byte[Math.Max(path.Length, 2 * _path.Length)];
                        }

                        path.CopyTo(_path);
                        _pathLength = path.Length;
                        return true;
                    }
                }
            }

            if (++_gone < gone.Count)
            {
                _path = gone[_gone];
                _pathLength = _path.Length;
                return true;
            }

            return false;
        }
    }

    /// <summary>
    /// A path waiting to be looked at: its burst's first and last raw event (timestamps), when it was last seen (UTC),
    /// by what, whether its last raw event ended the burst (a known file closed after writing), and whether the entry
    /// known at it moved out of the tree (what is there now, if anything, is another).
    /// </summary>
    private readonly record struct Pending(long First, long Last, DateTimeOffset ObservedAt, ChangeSource Source, bool Done = false, bool MovedOut = false);

    /// <summary>The first half of a rename, waiting for its second: the path it left, the watches it took along (a directory's), when it was read.</summary>
    private readonly record struct MoveFrom(byte[] Path, List<(byte[] Path, int Wd)>? Watches, DateTimeOffset ObservedAt, long ReadAt);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "The kernel's inotify queue for {MountPath} overflowed (fs.inotify.max_queued_events = {MaxQueued}): changes were lost from the watch; rescanning now to find them. If this repeats, raise fs.inotify.max_queued_events on the node")]
    private static partial void LogOverflow(ILogger logger, string mountPath, string maxQueued);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Out of inotify watches (fs.inotify.max_user_watches = {MaxWatches}) at {Path} with {Watches} watched: changes in directories not watched are found only by the periodic scan. Raise fs.inotify.max_user_watches on the node (sysctl) or exclude more (Agent:Changes:Exclude)")]
    private static partial void LogWatchLimit(ILogger logger, string maxWatches, string path, int watches);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Reconciled a scan of {Entries} entries with the state: {Differences} paths looked at again, {Known} paths known ({StateMiB} MiB)")]
    private static partial void LogReconciled(ILogger logger, int entries, int differences, int known, long stateMiB);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not watch {Path}: {Reason}; its changes are found by the next scan")]
    private static partial void LogWatchFailed(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The monitored directory {MountPath} itself was removed or moved: nothing below it can be watched until it is back and the agent restarts")]
    private static partial void LogRootGone(ILogger logger, string mountPath);
}
