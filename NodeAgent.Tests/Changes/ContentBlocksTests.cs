using NodeAgent.Changes;

namespace NodeAgent.Tests.Changes;

public sealed class ContentBlocksTests
{
    private static byte[] Content(int i, int size) => [.. Enumerable.Range(0, size).Select(k => (byte)(k * 31 + i))];

    [Fact]
    public void Contents_read_back_exactly_and_a_stored_batch_gives_its_blocks_to_the_next_one()
    {
        var blocks = new ContentBlocks(maxFreeBlocks: 8);
        var sizes = Enumerable.Range(0, 200).Select(i => i % 40 == 0 ? ContentBlocks.BlockSize / 2 : i * 97 % 9000).ToArray();

        var first = blocks.Open();
        var kept = sizes.Select((size, i) => first.Add(Content(i, size))).ToList();
        for (var i = 0; i < sizes.Length; i++)
        {
            Assert.True(kept[i].Span.SequenceEqual(Content(i, sizes[i])), $"content {i} of {sizes[i]} bytes");
        }

        Assert.Equal(0, blocks.FreeBlocks);
        first.Release();
        // About 0.8 MB in 64 KiB blocks: more than the 8 kept, and no more than 8 are.
        Assert.Equal(8, blocks.FreeBlocks);

        var second = blocks.Open();
        var again = Enumerable.Range(0, 20).Select(i => second.Add(Content(i + 1000, 6000))).ToList();
        Assert.Equal(6, blocks.FreeBlocks);
        for (var i = 0; i < again.Count; i++)
        {
            Assert.True(again[i].Span.SequenceEqual(Content(i + 1000, 6000)));
        }
    }
}
