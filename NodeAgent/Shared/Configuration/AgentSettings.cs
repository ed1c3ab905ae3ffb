using Microsoft.Extensions.Configuration;

namespace NodeAgent.Shared.Configuration;

/// <summary>
/// The settings every capability shares (section <c>Agent</c>): which node this is, the monitored directory, whether
/// the agent runs once, and the database. Each capability reads its own section (<c>Agent:Inventory</c>, ...) with
/// <see cref="SettingsSection"/>. Everything is read and checked at start, so that a bad value stops the agent with
/// one line naming the key.
/// </summary>
public sealed record AgentSettings(string NodeName, string MountPath, bool RunOnce, string ConnectionString)
{
    public const string Section = "Agent";
    public const string DefaultMountPath = "/mnt/node-data";

    /// <summary>Where the database lives, for messages: host, port, database and user, never the password.</summary>
    public string DatabaseDescription => DatabaseConnection.Describe(ConnectionString);

    public static AgentSettings Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = new SettingsSection(configuration, Section);

        var nodeName = section.Text("NodeName");
        if (string.IsNullOrWhiteSpace(nodeName))
        {
            nodeName = Environment.MachineName;
        }

        var mountPath = section.Text("MountPath");
        if (mountPath is not null && string.IsNullOrWhiteSpace(mountPath))
        {
            throw new AgentConfigurationException("Agent:MountPath is empty; set it to the directory to scan (default /mnt/node-data).");
        }

        mountPath ??= DefaultMountPath;
        if (!Path.IsPathFullyQualified(mountPath))
        {
            throw new AgentConfigurationException($"Agent:MountPath '{mountPath}' must be an absolute path.");
        }

        return new AgentSettings(
            nodeName.Trim(),
            Path.TrimEndingDirectorySeparator(mountPath) is { Length: > 0 } trimmed ? trimmed : "/",
            section.Bool("RunOnce", false),
            DatabaseConnection.Resolve(configuration));
    }
}
