namespace NodeAgent.Shared.Hosting;

/// <summary>
/// One thing the agent watches (the inventory, file changes, process events), behind the one small interface the host
/// knows: its name, the settings it reads (which <c>--help</c> lists and the command line accepts), and how it registers.
/// </summary>
public interface ICapability
{
    string Name { get; }

    IReadOnlyList<SettingKey> Settings { get; }

    void Add(AgentBuilder agent);
}

/// <summary>A configuration key, its default as text, what it means, and the older key it replaced (still read).</summary>
public sealed record SettingKey(string Key, string Default, string Meaning, string? Alias = null);
