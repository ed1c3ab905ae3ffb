using Microsoft.Extensions.Configuration;
using NodeAgent.Changes;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Tests.Changes;

/// <summary>Section <c>Agent:Changes</c>: defaults, lists given either way, and bad values named by their key.</summary>
public sealed class ChangesSettingsTests
{
    private static IConfiguration Configuration(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    private static string LoadError(params (string Key, string? Value)[] values) =>
        Assert.Throws<AgentConfigurationException>(() => ChangesSettings.Load(Configuration(values))).Message;

    [Fact]
    public void Without_keys_the_documented_defaults_apply()
    {
        var settings = ChangesSettings.Load(Configuration());

        Assert.True(settings.Enabled);
        Assert.Equal(TimeSpan.FromMilliseconds(100), settings.QuietWindow);
        Assert.Equal(TimeSpan.FromSeconds(3), settings.MaxWait);
        Assert.Equal(64L << 20, settings.HashMaxBytes);
        Assert.Equal(1L << 20, settings.SnapshotMaxBytes);
        Assert.Equal(ChangesSettings.DefaultSnapshotInclude, settings.SnapshotInclude.Patterns);
        Assert.Equal(ChangesSettings.DefaultExclude, settings.Exclude.Patterns);
        Assert.True(settings.Exclude.Matches("a/.git/config"u8));
        Assert.True(settings.SnapshotInclude.Matches("hw1/Makefile"u8));
    }

    [Fact]
    public void Lists_are_read_comma_separated_or_as_a_json_array()
    {
        var separated = ChangesSettings.Load(Configuration(("Agent:Changes:Exclude", " build/** , *.tmp")));
        var array = ChangesSettings.Load(Configuration(("Agent:Changes:SnapshotInclude:0", "*.c"), ("Agent:Changes:SnapshotInclude:1", "*.h")));
        var empty = ChangesSettings.Load(Configuration(("Agent:Changes:Exclude", "")));

        Assert.Equal(["build/**", "*.tmp"], separated.Exclude.Patterns);
        Assert.Equal(["*.c", "*.h"], array.SnapshotInclude.Patterns);
        Assert.True(empty.Exclude.IsEmpty);
    }

    [Fact]
    public void Bad_values_stop_the_agent_naming_the_key()
    {
        Assert.Contains("Agent:Changes:Exclude", LoadError(("Agent:Changes:Exclude", "/abs/**")), StringComparison.Ordinal);
        Assert.Contains("Agent:Changes:QuietWindow", LoadError(("Agent:Changes:QuietWindow", "0.6")), StringComparison.Ordinal);
        Assert.Contains("Agent:Changes:MaxWait must not be shorter than Agent:Changes:QuietWindow",
            LoadError(("Agent:Changes:QuietWindow", "00:00:05"), ("Agent:Changes:MaxWait", "00:00:01")), StringComparison.Ordinal);
        Assert.Contains("Agent:Changes:SnapshotMaxBytes",
            LoadError(("Agent:Changes:HashMaxBytes", "1000"), ("Agent:Changes:SnapshotMaxBytes", "2000")), StringComparison.Ordinal);
        Assert.Contains("Agent:Changes:Enabled", LoadError(("Agent:Changes:Enabled", "sometimes")), StringComparison.Ordinal);
    }
}
