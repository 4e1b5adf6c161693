using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Tests.TaskDefinitions;

public class LargeJsonTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(LargeJson.ChunkChars)]
    [InlineData(LargeJson.ChunkChars + 1)]
    [InlineData(LargeJson.MaxChars)]
    public void A_document_reads_back_as_written(int length)
    {
        var json = new string('x', length);
        var entity = new TableEntity("p", "r");

        LargeJson.Write(entity, json);

        Assert.Equal(json, LargeJson.Read(entity));
        Assert.All(entity.Where(p => p.Key.StartsWith("Json", StringComparison.Ordinal)),
            p => Assert.True(((string)p.Value).Length <= LargeJson.ChunkChars));
    }

    [Fact]
    public void No_chunk_splits_a_surrogate_pair()
    {
        // "😀" is two UTF-16 code units; place one across the first chunk boundary.
        var json = new string('x', LargeJson.ChunkChars - 1) + "😀" + new string('y', 10);
        var entity = new TableEntity("p", "r");

        LargeJson.Write(entity, json);

        Assert.Equal(json, LargeJson.Read(entity));
        Assert.False(char.IsHighSurrogate(((string)entity["Json0"])[^1]));
    }

    [Fact]
    public void Rewriting_a_shorter_document_drops_the_old_chunks()
    {
        var entity = new TableEntity("p", "r");
        LargeJson.Write(entity, new string('x', 3 * LargeJson.ChunkChars));
        LargeJson.Write(entity, "{}");

        Assert.Equal("{}", LargeJson.Read(entity));
        Assert.False(entity.ContainsKey("Json1"));
    }

    [Fact]
    public void A_document_too_large_for_an_entity_is_refused()
    {
        Assert.False(LargeJson.Fits(new string('x', LargeJson.MaxChars + 1)));
        Assert.Throws<ArgumentException>(() => LargeJson.Write(new TableEntity("p", "r"), new string('x', LargeJson.MaxChars + 1)));
    }

    [Fact]
    public void Documents_under_another_prefix_live_side_by_side()
    {
        var entity = new TableEntity("p", "r");
        LargeJson.Write(entity, "[1]", "Tags");
        LargeJson.Write(entity, "{\"a\":1}");

        Assert.Equal("[1]", LargeJson.Read(entity, "Tags"));
        Assert.Equal("{\"a\":1}", LargeJson.Read(entity));
        Assert.Null(LargeJson.Read(new TableEntity("p", "r")));
    }
}
