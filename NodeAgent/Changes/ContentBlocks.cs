namespace NodeAgent.Changes;

/// <summary>
/// The snapshot contents of batches not yet stored, copied into 64 KiB blocks that later batches use again once theirs
/// is stored. A first start keeps the content of every source file it finds (about 500 MB over 200,000 files of
/// students' sources); as an array each, every content lived just long enough (until its batch was stored) to reach the
/// GC's oldest generation, and piled up there between its collections. A batch that is never stored (dropped in an
/// outage) keeps its blocks, and the GC takes them with it.
/// </summary>
internal sealed class ContentBlocks(int maxFreeBlocks = ContentBlocks.DefaultMaxFreeBlocks)
{
    public const int BlockSize = 64 * 1024;

    /// <summary>Blocks kept for later batches: about three batches of what a scan found (1 MiB each).</summary>
    public const int DefaultMaxFreeBlocks = 48;

    /// <summary>Contents larger than this get an array of their own rather than most of a block.</summary>
    private const int LargestInBlock = BlockSize / 4;

    private readonly Lock _lock = new();
    private readonly Stack<byte[]> _free = new();

    /// <summary>Blocks waiting for a batch (read by tests).</summary>
    internal int FreeBlocks
    {
        get
        {
            lock (_lock)
            {
                return _free.Count;
            }
        }
    }

    public Batch Open() => new(this);

    private byte[] Rent()
    {
        lock (_lock)
        {
            return _free.TryPop(out var block) ? block : new byte[BlockSize];
        }
    }

    private void Return(List<byte[]> blocks)
    {
        lock (_lock)
        {
            foreach (var block in blocks)
            {
                if (_free.Count >= maxFreeBlocks)
                {
                    break;
                }

                _free.Push(block);
            }
        }
    }

    /// <summary>The contents of one batch.</summary>
    public sealed class Batch(ContentBlocks owner)
    {
        private readonly List<byte[]> _blocks = [];
        private int _used = BlockSize;

        /// <summary>A copy of <paramref name="content"/>, valid until <see cref="Release"/>.</summary>
        public ReadOnlyMemory<byte> Add(ReadOnlySpan<byte> content)
        {
            if (content.Length > LargestInBlock)
            {
                return content.ToArray();
            }

            if (_used + content.Length > BlockSize)
            {
                _blocks.Add(owner.Rent());
                _used = 0;
            }

            var block = _blocks[^1];
            content.CopyTo(block.AsSpan(_used));
            var copy = block.AsMemory(_used, content.Length);
            _used += content.Length;
            return copy;
        }

        /// <summary>The batch is stored: its blocks go to later batches, and nothing may read its contents any more.</summary>
        public void Release()
        {
            owner.Return(_blocks);
            _blocks.Clear();
            _used = BlockSize;
        }
    }
}
