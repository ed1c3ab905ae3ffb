using Microsoft.Extensions.Configuration;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Insight;

/// <summary>Section <c>Agent:Insight</c>: whether and how often this agent looks for a relabel to take part in.</summary>
internal sealed record InsightSettings(bool Relabel, TimeSpan RelabelInterval, int RelabelBatch)
{
    public const string Section = "Agent:Insight";

    public static IReadOnlyList<SettingKey> Keys { get; } =
    [
        new($"{Section}:Relabel", "true", "take part in relabelling after a template change (one agent at a time takes each step)"),
        new($"{Section}:RelabelInterval", "00:00:10", "how often to look for a template change while there is none"),
        new($"{Section}:RelabelBatch", "5000", "subjects relabelled per step (one short transaction)"),
    ];

    public static InsightSettings Load(IConfiguration configuration)
    {
        var section = new SettingsSection(configuration, Section);
        return new InsightSettings(
            section.Bool("Relabel", true),
            section.TimeSpan("RelabelInterval", TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1)),
            (int)section.Integer("RelabelBatch", 5000, 100, 1_000_000));
    }
}
