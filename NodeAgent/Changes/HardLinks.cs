namespace NodeAgent.Changes;

/// <summary>
/// The paths below the monitored directory that are links to the same file, as far as the detector has looked at them:
/// inotify reports a write only at the path written through, while every link's size and hash changed. Only files with
/// more than one link are kept (most files have one), so the state itself holds no inode numbers.
/// </summary>
internal sealed class HardLinks
{
    private readonly Dictionary<FileIdentity, List<byte[]>> _pathsByFile = [];
    private readonly Dictionary<byte[], FileIdentity> _fileByPath = new(PathComparer.Instance);

    /// <summary>Paths known to be one of several links.</summary>
    public int Count => _fileByPath.Count;

    /// <summary>What a look at <paramref name="path"/> found: a regular file with <paramref name="links"/> links (or something else, with 0).</summary>
    public void Seen(byte[] path, FileIdentity file, uint links)
    {
        if (links < 2)
        {
            Forget(path);
            return;
        }

        if (_fileByPath.TryGetValue(path, out var known))
        {
            if (known == file)
            {
                return;
            }

            Forget(path);
        }

        _fileByPath[path] = file;
        if (!_pathsByFile.TryGetValue(file, out var paths))
        {
            _pathsByFile[file] = paths = new List<byte[]>(2);
        }

        paths.Add(path);
    }

    public void Forget(ReadOnlySpan<byte> path)
    {
        if (_fileByPath.Count == 0 || !_fileByPath.GetAlternateLookup<ReadOnlySpan<byte>>().Remove(path, out var known, out var file))
        {
            return;
        }

        var paths = _pathsByFile[file];
        // The same array is the key in both.
        paths.Remove(known);
        if (paths.Count == 0)
        {
            _pathsByFile.Remove(file);
        }
    }

    /// <summary>The other paths known to be links to the file at <paramref name="path"/> (a copy: looking at them changes what is known).</summary>
    public List<byte[]> OthersOf(ReadOnlySpan<byte> path)
    {
        if (_fileByPath.Count == 0 || !_fileByPath.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(path, out var file))
        {
            return [];
        }

        var others = new List<byte[]>();
        foreach (var other in _pathsByFile[file])
        {
            if (!other.AsSpan().SequenceEqual(path))
            {
                others.Add(other);
            }
        }

        return others;
    }
}

/// <summary>A file as the kernel knows it, whatever its names: its file system and inode number.</summary>
internal readonly record struct FileIdentity(ulong Device, ulong Inode);
