using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Shared.Configuration;

/// <summary>
/// The settings every capability shares (section <c>Agent</c>): which node this is, the monitored directory, whether
/// the agent runs once, and the database. Each capability reads its own section (<c>Agent:Inventory</c>, ...) with
/// <see cref="SettingsSection"/>. Everything is read and checked at start, so that a bad value stops the agent with
/// one line naming the key.
/// </summary>
public sealed partial record AgentSettings(string NodeName, string MountPath, bool RunOnce, string ConnectionString)
{
    public const string Section = "Agent";
    public const string DefaultMountPath = "/mnt/node-data";

    /// <summary>Kubernetes node names are DNS subdomains (RFC 1123): at most 253 characters.</summary>
    public const int MaxNodeNameLength = 253;

    public static IReadOnlyList<SettingKey> Keys { get; } =
    [
        new("Agent:NodeName", "machine name", "the Kubernetes node (a DNS subdomain: a-z, 0-9, '-', '.'); the DaemonSet sets it from spec.nodeName"),
        new("Agent:MountPath", DefaultMountPath, "the monitored directory (absolute; it must exist at start)"),
        new("Agent:RunOnce", "false", "collect once, store, exit 0 (1 when it could not be stored)"),
        new("Agent:MigrateOnly", "false", "apply the schema migrations and exit 0 (1 when they failed): for a role that may change the schema"),
    ];

    /// <summary>Apply the schema migrations and exit (<c>Agent:MigrateOnly</c>).</summary>
    public bool MigrateOnly { get; init; }

    /// <summary>Where the database lives, for messages: host, port, database and user, never the password.</summary>
    public string DatabaseDescription => DatabaseConnection.Describe(ConnectionString);

    public static AgentSettings Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = new SettingsSection(configuration, Section);

        var nodeName = section.Text("NodeName");
        if (nodeName is null || nodeName.Length == 0)
        {
            // Kubernetes names a node after its host name, lowercased.
            nodeName = Environment.MachineName.ToLowerInvariant();
            if (!NodeNamePattern().IsMatch(nodeName))
            {
                throw new AgentConfigurationException(
                    $"Agent:NodeName is not set and the machine name '{Printable(nodeName)}' is not a valid node name: set Agent:NodeName.");
            }
        }
        else if (nodeName.Length > MaxNodeNameLength || !NodeNamePattern().IsMatch(nodeName))
        {
            throw new AgentConfigurationException(
                $"Agent:NodeName '{Printable(nodeName)}' is not a Kubernetes node name (at most {MaxNodeNameLength} characters: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit).");
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

        // One spelling per directory: "/x/.", "/x/" and "/x/y/.." are all "/x" (lexically; links are not resolved).
        mountPath = Path.GetFullPath(mountPath);

        return new AgentSettings(
            nodeName,
            Path.TrimEndingDirectorySeparator(mountPath) is { Length: > 0 } trimmed ? trimmed : "/",
            section.Bool("RunOnce", false),
            DatabaseConnection.Resolve(configuration))
        {
            MigrateOnly = section.Bool("MigrateOnly", false),
        };
    }

    /// <summary>A value for an error line: control characters shown as \xHH, so a bad value cannot forge log lines.</summary>
    private static string Printable(string value) =>
        string.Concat(value.Select(c => char.IsControl(c) ? $"\\x{(int)c:X2}" : c.ToString()));

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex NodeNamePattern();
}
